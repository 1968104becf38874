//! The pod sandbox's CRI config (upstream `kuberuntime_sandbox.go`): metadata, hostname,
//! log directory, DNS (upstream `pkg/kubelet/network/dns`), host ports, namespaces and
//! the pod's cgroup parent (named by `cm`).

use crate::cri::{POD_NAME, POD_NAMESPACE, POD_UID, api};
use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;

pub struct DnsSettings {
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub resolv_conf: String,
}

pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    let mut l: HashMap<String, String> = m.labels.clone().unwrap_or_default().into_iter().collect();
    l.insert(POD_NAME.into(), m.name.clone().unwrap_or_default());
    l.insert(
        POD_NAMESPACE.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    l.insert(POD_UID.into(), m.uid.clone().unwrap_or_default());
    l
}

/// `<podLogsDir>/<namespace>_<name>_<uid>`.
pub fn log_directory(root: &str, pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}/{}_{}_{}",
        root.trim_end_matches('/'),
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}

/// Upstream's QoS class: Guaranteed (every container's requests == limits for cpu and
/// memory), BestEffort (no requests or limits), else Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let spec = pod.spec.as_ref();
    // Pod-level resources, when they name cpu or memory, decide alone.
    if let Some(r) = spec.and_then(|s| s.resources.as_ref()) {
        let get = |m: &Option<
            std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >,
        >,
                   k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k))
                .filter(|q| !is_zero(&q.0))
                .map(|q| quantity_milli(&q.0))
        };
        let set = ["cpu", "memory"]
            .iter()
            .any(|k| get(&r.requests, k).is_some() || get(&r.limits, k).is_some());
        if set {
            let guaranteed = ["cpu", "memory"].iter().all(|k| {
                let lim = get(&r.limits, k);
                lim.is_some() && get(&r.requests, k).is_none_or(|q| Some(q) == lim)
            });
            return if guaranteed {
                "Guaranteed"
            } else {
                "Burstable"
            };
        }
    }
    let containers: Vec<_> = spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.as_ref());
        let lim = r.and_then(|r| r.limits.as_ref());
        for res in ["cpu", "memory"] {
            let rq = req.and_then(|m| m.get(res)).filter(|q| !is_zero(&q.0));
            let lm = lim.and_then(|m| m.get(res)).filter(|q| !is_zero(&q.0));
            if rq.is_some() || lm.is_some() {
                any = true;
            }
            match (rq, lm) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if quantity_milli(&a.0) != quantity_milli(&b.0) => {
                    guaranteed = false
                }
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn is_zero(q: &str) -> bool {
    quantity_milli(q) == 0
}

pub fn quantity_milli(q: &str) -> i64 {
    apimachinery::resource::Quantity::parse(q).map_or(0, |q| q.milli_value())
}

pub fn quantity_value(q: &str) -> i64 {
    apimachinery::resource::Quantity::parse(q).map_or(0, |q| q.value())
}

/// The sandbox's DNS (upstream `GetPodDNS`): ClusterFirst uses the cluster DNS with the
/// namespace's search path (falling back to the host's resolv.conf when no cluster DNS
/// is configured, or for hostNetwork pods), Default the host's, None only dnsConfig.
pub fn dns_config(pod: &Pod, s: &DnsSettings) -> api::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let host = host_resolv(&s.resolv_conf);
    let mut policy = spec
        .dns_policy
        .clone()
        .unwrap_or_else(|| "ClusterFirst".into());
    if policy == "ClusterFirst" && spec.host_network == Some(true) {
        policy = "Default".into();
    }
    if policy == "ClusterFirst" && s.cluster_dns.is_empty() {
        policy = "Default".into();
    }
    let mut cfg = match policy.as_str() {
        "ClusterFirst" | "ClusterFirstWithHostNet" => {
            let d = s.cluster_domain.trim_end_matches('.');
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
            searches.extend(host.searches.clone());
            api::DnsConfig {
                servers: s.cluster_dns.clone(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        "None" => api::DnsConfig::default(),
        _ => host,
    };
    if let Some(extra) = spec.dns_config {
        cfg.servers.extend(extra.nameservers.unwrap_or_default());
        cfg.searches.extend(extra.searches.unwrap_or_default());
        for o in extra.options.unwrap_or_default() {
            let name = o.name.unwrap_or_default();
            cfg.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            cfg.options.push(match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    cfg.searches.dedup();
    cfg.searches.truncate(32);
    cfg
}

fn host_resolv(path: &str) -> api::DnsConfig {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut c = api::DnsConfig::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => c.servers.extend(f.next().map(String::from)),
            Some("search") => c.searches = f.map(String::from).collect(),
            Some("options") => c.options.extend(f.map(String::from)),
            _ => {}
        }
    }
    c
}

/// The hostname the pod's kernel gets (upstream `GetNodenameForKernel`): with
/// `setHostnameAsFQDN` and a subdomain, the fully qualified name, at most 64 characters.
pub fn kernel_hostname(pod: &Pod, cluster_domain: &str) -> Result<String, String> {
    let (hostname, domain) = super::etc_hosts::pod_hostname(pod, cluster_domain);
    let fqdn = pod.spec.as_ref().and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    if !fqdn || domain.is_empty() {
        return Ok(hostname);
    }
    let name = format!("{hostname}.{domain}");
    if name.len() > 64 {
        return Err(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {name} is too long (64 characters is the max, {} characters requested)",
            name.len()
        ));
    }
    Ok(name)
}

pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    logs_root: &str,
    dns: &DnsSettings,
    security: &super::security_context::SecurityOptions,
    cgroup_parent: String,
) -> Result<api::PodSandboxConfig, String> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network == Some(true);
    let hostname = if host_network {
        String::new()
    } else {
        kernel_hostname(pod, &dns.cluster_domain)?
    };
    let mut port_mappings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|h| *h > 0) {
                port_mappings.push(api::PortMapping {
                    protocol: match p.protocol.as_deref() {
                        Some("UDP") => api::Protocol::Udp as i32,
                        Some("SCTP") => api::Protocol::Sctp as i32,
                        _ => api::Protocol::Tcp as i32,
                    },
                    container_port: p.container_port,
                    host_port: hp,
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    let ns_mode = |node: bool| {
        if node {
            api::NamespaceMode::Node as i32
        } else {
            api::NamespaceMode::Pod as i32
        }
    };
    let sc = spec.security_context.clone().unwrap_or_default();
    Ok(api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(logs_root, pod),
        dns_config: Some(dns_config(pod, dns)),
        port_mappings,
        labels: pod_labels(pod),
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent,
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: ns_mode(host_network),
                    pid: if spec.host_pid == Some(true) {
                        api::NamespaceMode::Node as i32
                    } else if spec.share_process_namespace == Some(true) {
                        api::NamespaceMode::Pod as i32
                    } else {
                        api::NamespaceMode::Container as i32
                    },
                    ipc: ns_mode(spec.host_ipc == Some(true)),
                    ..Default::default()
                }),
                run_as_user: sc.run_as_user.map(|v| api::Int64Value { value: v }),
                run_as_group: sc.run_as_group.map(|v| api::Int64Value { value: v }),
                supplemental_groups: sc.supplemental_groups.clone().unwrap_or_default(),
                // A sandbox may hold privileged containers only if it says so
                // (upstream `HasPrivilegedContainer`).
                privileged: has_privileged_container(&spec),
                seccomp: Some(super::security_context::sandbox_seccomp(pod, security)),
                selinux_options: sc.se_linux_options.clone().map(|s| api::SeLinuxOption {
                    user: s.user.unwrap_or_default(),
                    role: s.role.unwrap_or_default(),
                    r#type: s.type_.unwrap_or_default(),
                    level: s.level.unwrap_or_default(),
                }),
                ..Default::default()
            }),
            sysctls: sc
                .sysctls
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.name, s.value))
                .collect(),
            ..Default::default()
        }),
        windows: None,
    })
}

/// Whether any container of the pod (init, regular or ephemeral) is privileged.
pub fn has_privileged_container(spec: &k8s_openapi::api::core::v1::PodSpec) -> bool {
    let privileged = |sc: Option<&k8s_openapi::api::core::v1::SecurityContext>| {
        sc.and_then(|s| s.privileged) == Some(true)
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| privileged(c.security_context.as_ref()))
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| privileged(c.security_context.as_ref()))
}

#[cfg(test)]
mod pod_level_tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn pod_level_resources_decide_the_qos_class() {
        let containers = json!([{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]);
        assert_eq!(
            qos_class(&pod(json!({"containers": containers}))),
            "Burstable"
        );
        let guaranteed = pod(json!({"containers": containers,
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}));
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burstable = pod(json!({"containers": [{"name": "c"}],
            "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}}));
        assert_eq!(qos_class(&burstable), "Burstable");
        assert_eq!(
            crate::admission::request(&burstable, "cpu"),
            1000,
            "pod-level requests stand for the containers'"
        );
    }

    #[test]
    fn fqdn_hostnames_fit_the_kernel() {
        let p = pod(
            json!({"containers": [], "hostname": "web", "subdomain": "sub",
            "setHostnameAsFQDN": true}),
        );
        assert_eq!(
            kernel_hostname(&p, "cluster.local").unwrap(),
            "web.sub.ns.svc.cluster.local"
        );
        let long = pod(
            json!({"containers": [], "hostname": "w".repeat(40), "subdomain": "sub",
            "setHostnameAsFQDN": true}),
        );
        assert!(
            kernel_hostname(&long, "cluster.local")
                .unwrap_err()
                .contains("is too long (64 characters is the max")
        );
        let plain = pod(json!({"containers": [], "hostname": "web", "subdomain": "sub"}));
        assert_eq!(kernel_hostname(&plain, "cluster.local").unwrap(), "web");
    }
}
