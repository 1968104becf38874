//! The kubelet-managed `/etc/hosts` of a pod's containers (upstream `kubelet_pods.go`:
//! `makeHostsMount`, `managedHostsFileContent`, `nodeHostsFileContent`): localhost
//! entries, the pod's IP under its hostname (and FQDN with a subdomain), `hostAliases`.
//! A hostNetwork pod gets the node's own file with its aliases.

use k8s_openapi::api::core::v1::Pod;

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";

/// The pod's hostname and, with a subdomain, its domain (`<subdomain>.<ns>.svc.<domain>`).
/// A name past 63 characters is cut there, without a trailing `-` or `.` (upstream
/// `truncatePodHostnameIfNeeded`).
pub fn pod_hostname(pod: &Pod, cluster_domain: &str) -> (String, String) {
    let spec = pod.spec.clone().unwrap_or_default();
    let name = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let hostname = if name.len() > 63 {
        name[..63].trim_end_matches(['-', '.']).to_string()
    } else {
        name
    };
    let domain = match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => format!(
            "{sub}.{}.svc.{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            cluster_domain.trim_end_matches('.')
        ),
        None => String::new(),
    };
    (hostname, domain)
}

/// The file's content. `node_hosts`: the node's `/etc/hosts`, for a hostNetwork pod.
pub fn content(
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
    node_hosts: Option<&str>,
) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut out = String::new();
    match node_hosts {
        Some(node) => {
            out.push_str(MANAGED_HEADER_HOST_NETWORK);
            out.push_str(node);
        }
        None => {
            out.push_str(MANAGED_HEADER);
            out.push_str("127.0.0.1\tlocalhost\n");
            out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
            out.push_str("fe00::0\tip6-localnet\n");
            out.push_str("fe00::0\tip6-mcastprefix\n");
            out.push_str("fe00::1\tip6-allnodes\n");
            out.push_str("fe00::2\tip6-allrouters\n");
            let (hostname, domain) = pod_hostname(pod, cluster_domain);
            for ip in pod_ips {
                if domain.is_empty() {
                    out.push_str(&format!("{ip}\t{hostname}\n"));
                } else {
                    out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
                }
            }
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            out.push_str(&format!(
                "{}\t{}\n",
                a.ip,
                a.hostnames.unwrap_or_default().join("\t")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    #[test]
    fn managed_file_with_subdomain_and_aliases() {
        let p = pod(
            "web-0",
            PodSpec {
                hostname: Some("web".into()),
                subdomain: Some("svc".into()),
                host_aliases: Some(vec![HostAlias {
                    ip: "123.45.67.89".into(),
                    hostnames: Some(vec!["foo".into(), "bar".into()]),
                }]),
                ..Default::default()
            },
        );
        assert_eq!(
            content(&p, &["10.244.0.5".into()], "cluster.local", None),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             10.244.0.5\tweb.svc.ns.svc.cluster.local\tweb\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n"
        );
    }

    #[test]
    fn host_network_and_long_names() {
        let p = pod("p", PodSpec::default());
        assert_eq!(
            content(
                &p,
                &["10.0.0.1".into()],
                "cluster.local",
                Some("127.0.0.1 localhost\n")
            ),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
        );
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(5));
        assert_eq!(
            pod_hostname(&pod(&long, PodSpec::default()), "c").0,
            "a".repeat(62)
        );
    }
}
