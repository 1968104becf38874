//! Pod admission on the node (upstream `pkg/kubelet/lifecycle/predicate.go`, the
//! kubelet's GeneralPredicates): before a pod first runs, the node must have room for it
//! — fewer than `maxPods` pods, and its requests within allocatable next to the pods
//! already admitted. A rejected pod ends `Failed` with reason `OutOf<resource>` and
//! upstream's message, and never runs.

use crate::kubelet::{Kubelet, is_static};
use crate::kuberuntime::sandbox::{quantity_milli, quantity_value};
use k8s_openapi::api::core::v1::Pod;

/// A pod's effective request of `resource` (upstream: max of the largest init container
/// and the sum of the app containers, plus overhead), in milli-units for cpu and units
/// otherwise.
pub fn request(pod: &Pod, resource: &str) -> i64 {
    let spec = pod.spec.clone().unwrap_or_default();
    let q = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref()?.get(resource))
            .map(|q| {
                if resource == "cpu" {
                    quantity_milli(&q.0)
                } else {
                    quantity_value(&q.0)
                }
            })
            .unwrap_or(0)
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
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(resource))
        .map(|q| {
            if resource == "cpu" {
                quantity_milli(&q.0)
            } else {
                quantity_value(&q.0)
            }
        })
        .unwrap_or(0);
    (app + sidecars).max(init + sidecars) + overhead
}

impl Kubelet {
    /// Err((reason, message)) if the pod does not fit next to `others` (the active pods
    /// admitted before it).
    pub fn admit(&self, pod: &Pod, others: &[Pod]) -> Result<(), (String, String)> {
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
        Ok(())
    }
}
