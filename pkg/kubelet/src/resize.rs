//! In-place pod resize on the node (upstream `kuberuntime_manager.go`
//! `computePodResizeAction` / `doPodResizeAction` and the allocation manager): when a
//! running container's resources in the spec differ from what it runs with, the resize
//! is checked against the node (`PodResizePending`: Infeasible beyond allocatable,
//! Deferred beyond what is free), then applied with CRI `UpdateContainerResources`, or by
//! restarting the container when its `resizePolicy` says `RestartContainer` for a
//! resource that changed. What a container runs with is recorded on it at creation (an
//! annotation) and after each update; the status reports it as `resources` and
//! `allocatedResources`.

use crate::cri::api;
use crate::kuberuntime::container::linux_resources;
use crate::kuberuntime::sandbox::{quantity_milli, quantity_value};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use std::collections::BTreeMap;

/// What the container runs with, recorded as an annotation when it is created.
pub const APPLIED: &str = "io.kubernetes.container.resources";

/// The resources a container instance runs with: its in-place resize (`resized`, by
/// container id), else what it was created with; None for a container created without
/// the record.
pub fn applied(
    resized: &std::collections::HashMap<String, ResourceRequirements>,
    i: &crate::status::Instance,
) -> Option<ResourceRequirements> {
    if let Some(r) = resized.get(&i.status.id) {
        return Some(r.clone());
    }
    serde_json::from_str(i.status.annotations.get(APPLIED)?).ok()
}

#[derive(Debug, PartialEq)]
pub enum Action {
    /// Nothing to do.
    None,
    /// Update the running container in place.
    Update(Box<api::LinuxContainerResources>),
    /// Restart it (its resizePolicy asks for it for a changed resource).
    Restart(String),
}

/// The container as it runs: its spec with the applied resources.
fn with_resources(c: &Container, r: &ResourceRequirements) -> Container {
    let mut c = c.clone();
    c.resources = Some(r.clone());
    c
}

/// The resize policy of `resource` ("cpu", "memory"); NotRequired by default.
fn policy(c: &Container, resource: &str) -> String {
    c.resize_policy
        .iter()
        .flatten()
        .find(|p| p.resource_name == resource)
        .map(|p| p.restart_policy.clone())
        .unwrap_or_else(|| "NotRequired".into())
}

/// What to do for a running container now running with `applied`.
pub fn plan(
    pod: &Pod,
    c: &Container,
    applied: &ResourceRequirements,
    memory_capacity: i64,
) -> Action {
    let want = linux_resources(pod, c, memory_capacity);
    let have = linux_resources(pod, &with_resources(c, applied), memory_capacity);
    let cpu_changed = (want.cpu_shares, want.cpu_quota, want.cpu_period)
        != (have.cpu_shares, have.cpu_quota, have.cpu_period);
    let memory_changed = want.memory_limit_in_bytes != have.memory_limit_in_bytes;
    if !cpu_changed && !memory_changed {
        return Action::None;
    }
    for (changed, resource) in [(cpu_changed, "cpu"), (memory_changed, "memory")] {
        if changed && policy(c, resource) == "RestartContainer" {
            return Action::Restart(format!("Container {} resize requires restart", c.name));
        }
    }
    Action::Update(Box::new(want))
}

/// A pod's request of `resource` over its regular containers (milli for cpu).
fn requested(pod: &Pod, resource: &str) -> i64 {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.containers
        .iter()
        .filter_map(|c| {
            c.resources
                .as_ref()?
                .requests
                .as_ref()?
                .get(resource)
                .cloned()
        })
        .map(|q| match resource {
            "cpu" => quantity_milli(&q.0),
            _ => quantity_value(&q.0),
        })
        .sum()
}

/// Whether the node can take the resized pod: Err((reason, message)) for the
/// PodResizePending condition. `others` are the other pods admitted here.
pub fn feasible(
    pod: &Pod,
    allocatable: &BTreeMap<String, String>,
    others: &[Pod],
) -> Result<(), (String, String)> {
    for resource in ["cpu", "memory"] {
        let Some(cap) = allocatable.get(resource) else {
            continue;
        };
        let cap = match resource {
            "cpu" => quantity_milli(cap),
            _ => quantity_value(cap),
        };
        let want = requested(pod, resource);
        if want > cap {
            return Err((
                "Infeasible".into(),
                format!(
                    "Node didn't have enough capacity: {resource}, requested: {want}, capacity: {cap}"
                ),
            ));
        }
        let used: i64 = others
            .iter()
            .map(|p| crate::admission::request(p, resource))
            .sum();
        if used + want > cap {
            return Err((
                "Deferred".into(),
                format!(
                    "Node didn't have enough resource: {resource}, requested: {want}, used: {used}, capacity: {cap}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(limit: &str, policy: &str) -> (Pod, Container) {
        let p: Pod =
            serde_json::from_value(serde_json::json!({"spec": {"containers": [{"name": "c",
            "resizePolicy": [{"resourceName": "memory", "restartPolicy": policy}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": limit, "memory": "128Mi"}}}]}}))
            .unwrap();
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        (p, c)
    }

    fn resources(cpu_limit: &str, mem_limit: &str) -> ResourceRequirements {
        serde_json::from_value(
            serde_json::json!({"requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": cpu_limit, "memory": mem_limit}}),
        )
        .unwrap()
    }

    #[test]
    fn resizes_apply_in_place_or_restart_by_policy() {
        let (p, c) = pod("800m", "RestartContainer");
        // The same resources, however written: nothing.
        assert_eq!(
            plan(&p, &c, &resources("0.8", "128Mi"), 1 << 30),
            Action::None
        );
        // CPU changed, its policy is NotRequired: in place.
        match plan(&p, &c, &resources("500m", "128Mi"), 1 << 30) {
            Action::Update(r) => assert_eq!((r.cpu_quota, r.cpu_period), (80_000, 100_000)),
            other => panic!("{other:?}"),
        }
        // Memory changed and its policy says restart.
        assert_eq!(
            plan(&p, &c, &resources("800m", "256Mi"), 1 << 30),
            Action::Restart("Container c resize requires restart".into())
        );
    }

    #[test]
    fn resizes_beyond_the_node_wait_or_are_refused() {
        let (p, _) = pod("800m", "NotRequired");
        let alloc: BTreeMap<String, String> = [
            ("cpu".to_string(), "1".to_string()),
            ("memory".to_string(), "1Gi".to_string()),
        ]
        .into();
        assert!(feasible(&p, &alloc, &[]).is_ok());
        let small: BTreeMap<String, String> = [("cpu".to_string(), "50m".to_string())].into();
        assert_eq!(feasible(&p, &small, &[]).unwrap_err().0, "Infeasible");
        let (busy, _) = pod("1", "NotRequired");
        let mut busy = busy;
        busy.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests = Some(
            [(
                "cpu".to_string(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("950m".into()),
            )]
            .into(),
        );
        let (reason, message) = feasible(&p, &alloc, &[busy]).unwrap_err();
        assert_eq!(reason, "Deferred");
        assert_eq!(
            message,
            "Node didn't have enough resource: cpu, requested: 100, used: 950, capacity: 1000"
        );
    }
}
