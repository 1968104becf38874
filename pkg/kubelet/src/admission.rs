//! Pod admission on the node (upstream `pkg/kubelet/lifecycle/predicate.go`, the
//! kubelet's GeneralPredicates): before a pod first runs, the node must have room for it
//! — fewer than `maxPods` pods, its requests within allocatable next to the pods already
//! admitted, and none of its host ports taken. A rejected pod ends `Failed` with reason
//! `OutOf<resource>` (or `NodePorts`) and upstream's message, and never runs.

use crate::kubelet::{Kubelet, is_static};
use crate::kuberuntime::sandbox::{quantity_milli, quantity_value};
use k8s_openapi::api::core::v1::Pod;

/// A pod's effective request of `resource` (upstream: max of the largest init container
/// and the sum of the app containers, plus overhead), in milli-units for cpu and units
/// otherwise.
pub fn request(pod: &Pod, resource: &str) -> i64 {
    let spec = pod.spec.clone().unwrap_or_default();
    let value = |q: &str| {
        if resource == "cpu" {
            quantity_milli(q)
        } else {
            quantity_value(q)
        }
    };
    let overhead_of = |spec: &k8s_openapi::api::core::v1::PodSpec| {
        spec.overhead
            .as_ref()
            .and_then(|o| o.get(resource))
            .map_or(0, |q| value(&q.0))
    };
    // Pod-level resources (cpu and memory) stand for the containers' sum.
    if matches!(resource, "cpu" | "memory")
        && let Some(q) = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref()?.get(resource))
    {
        return value(&q.0) + overhead_of(&spec);
    }
    let q = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref()?.get(resource))
            .map_or(0, |q| value(&q.0))
    };
    let app: i64 = spec.containers.iter().map(q).sum();
    let sidecars: i64 = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(q)
        .sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() != Some("Always"))
        .map(q)
        .max()
        .unwrap_or(0);
    (app + sidecars).max(init + sidecars) + overhead_of(&spec)
}

/// A pod for another OS, by `spec.os.name` or a `kubernetes.io/os` node selector
/// (upstream's OS predicates).
pub fn admit_os(pod: &Pod) -> Result<(), (String, String)> {
    let spec = pod.spec.as_ref();
    if spec
        .and_then(|s| s.os.as_ref())
        .is_some_and(|os| os.name != std::env::consts::OS)
    {
        return Err((
            "PodOSNotSupported".into(),
            "Failed to admit pod as the OS field doesn't match node OS".into(),
        ));
    }
    if spec
        .and_then(|s| s.node_selector.as_ref())
        .and_then(|n| n.get("kubernetes.io/os"))
        .is_some_and(|os| os != std::env::consts::OS)
    {
        return Err((
            "PodOSSelectorNodeLabelDoesNotMatch".into(),
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label".into(),
        ));
    }
    Ok(())
}

/// The (protocol, hostIP, hostPort) a pod binds on the node: its containers' and its
/// sidecars' ports with a hostPort (upstream `GetContainerPorts`).
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let spec = pod.spec.clone().unwrap_or_default();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            let ip = p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port))
        })
        .collect()
}

/// Whether two host port bindings collide: same protocol and port, and the same address
/// or either on every address (upstream `HostPortInfo.CheckConflict`).
fn ports_conflict(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || a.1 == "0.0.0.0" || b.1 == "0.0.0.0")
}

/// Upstream's NodePorts rejection, if a host port of `pod` is taken by one of `others`.
pub fn node_ports(pod: &Pod, others: &[Pod]) -> Result<(), (String, String)> {
    let used: Vec<_> = others.iter().flat_map(host_ports).collect();
    if host_ports(pod)
        .iter()
        .any(|want| used.iter().any(|u| ports_conflict(want, u)))
    {
        return Err((
            "NodePorts".into(),
            "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports".into(),
        ));
    }
    Ok(())
}

impl Kubelet {
    /// What the node must be able to enforce for the pod (upstream's sysctl, AppArmor and
    /// user-namespace admit handlers): refused with upstream's reason rather than run
    /// with less protection than asked for.
    fn admit_security(&self, pod: &Pod) -> Result<(), (String, String)> {
        self.sysctls
            .admit(pod)
            .map_err(|m| (crate::sysctl::FORBIDDEN_REASON.to_string(), m))?;
        if !self.apparmor_enabled && crate::kuberuntime::security_context::requires_apparmor(pod) {
            return Err((
                "AppArmor".into(),
                "Cannot enforce AppArmor: AppArmor is not enabled on the host".into(),
            ));
        }
        let spec = pod.spec.as_ref();
        if spec.and_then(|s| s.host_users) == Some(false) {
            return Err((
                "UserNamespacesNotSupported".into(),
                "Pod was rejected: user namespaces (hostUsers: false) are not supported by this node".into(),
            ));
        }
        let strict = spec
            .and_then(|s| s.security_context.as_ref())
            .and_then(|s| s.supplemental_groups_policy.as_deref())
            == Some("Strict");
        let supported = self
            .strict_supplemental_groups
            .load(std::sync::atomic::Ordering::Relaxed);
        if strict && !supported {
            return Err((
                "SupplementalGroupsPolicyNotSupported".into(),
                "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported by the container runtime of this node".into(),
            ));
        }
        Ok(())
    }

    /// Err((reason, message)) if the pod does not fit next to `others` (the active pods
    /// admitted before it).
    pub fn admit(&self, pod: &Pod, others: &[Pod]) -> Result<(), (String, String)> {
        self.shutdown.admit()?;
        admit_os(pod)?;
        self.admit_security(pod)?;
        if is_static(pod) {
            return Ok(());
        }
        if others.len() as i64 >= i64::from(self.cfg.max_pods) {
            return Err((
                "OutOfpods".into(),
                format!(
                    "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {}",
                    others.len(),
                    self.cfg.max_pods
                ),
            ));
        }
        let allocatable = self.allocatable.lock().unwrap().clone();
        for resource in ["cpu", "memory", "ephemeral-storage"] {
            let Some(cap) = allocatable.get(resource) else {
                continue;
            };
            let cap = if resource == "cpu" {
                quantity_milli(cap)
            } else {
                quantity_value(cap)
            };
            let want = request(pod, resource);
            if want == 0 {
                continue;
            }
            let used: i64 = others.iter().map(|p| request(p, resource)).sum();
            if used + want > cap {
                return Err((
                    format!("OutOf{resource}"),
                    format!(
                        "Pod was rejected: Node didn't have enough resource: {resource}, requested: {want}, used: {used}, capacity: {cap}"
                    ),
                ));
            }
        }
        node_ports(pod, others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ports: serde_json::Value) -> Pod {
        serde_json::from_value(
            serde_json::json!({"spec": {"containers": [{"name": "c", "ports": ports}]}}),
        )
        .unwrap()
    }

    #[test]
    fn host_ports_conflict_as_upstream() {
        let any = pod(serde_json::json!([{"containerPort": 80, "hostPort": 8080}]));
        let on_ip = |ip: &str, proto: &str| {
            pod(
                serde_json::json!([{"containerPort": 80, "hostPort": 8080, "hostIP": ip, "protocol": proto}]),
            )
        };
        assert!(node_ports(&any, &[on_ip("10.0.0.1", "TCP")]).is_err());
        assert!(node_ports(&on_ip("10.0.0.1", "TCP"), &[on_ip("10.0.0.1", "TCP")]).is_err());
        // Another address, another protocol, or no host port: no conflict.
        assert!(node_ports(&on_ip("10.0.0.1", "TCP"), &[on_ip("10.0.0.2", "TCP")]).is_ok());
        assert!(node_ports(&any, &[on_ip("0.0.0.0", "UDP")]).is_ok());
        let plain = pod(serde_json::json!([{"containerPort": 8080}]));
        assert!(node_ports(&plain, std::slice::from_ref(&any)).is_ok());
        let (reason, message) = node_ports(&any, std::slice::from_ref(&any)).unwrap_err();
        assert_eq!(reason, "NodePorts");
        assert!(message.starts_with("Pod was rejected: Predicate NodePorts failed"));
    }
}
