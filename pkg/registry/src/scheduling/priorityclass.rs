//! PriorityClasses (upstream `pkg/registry/scheduling/priorityclass`), including the two
//! system classes the apiserver creates at start.

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{Value, json};

/// Upstream's `HighestUserDefinablePriority`.
pub const HIGHEST_USER_DEFINABLE: i32 = 1_000_000_000;
pub const SYSTEM_CRITICAL: i32 = 2 * HIGHEST_USER_DEFINABLE;

/// `system-node-critical` and `system-cluster-critical`, as upstream bootstraps them.
pub fn system_classes() -> Vec<Value> {
    [
        ("system-node-critical", SYSTEM_CRITICAL + 1000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", SYSTEM_CRITICAL, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ]
    .into_iter()
    .map(|(name, value, desc)| {
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value, "description": desc})
    })
    .collect()
}

pub fn strategy() -> Typed<PriorityClass> {
    let mut t = simple(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
    );
    t.default = |p: &mut PriorityClass| {
        p.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    };
    t.check_delete = |obj| {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if system_classes()
            .iter()
            .any(|s| s["metadata"]["name"] == name)
        {
            return Err(apimachinery::StatusError::forbidden(
                &apimachinery::GroupResource::new("scheduling.k8s.io", "priorityclasses"),
                name,
                "this is a system priority class and cannot be deleted",
            ));
        }
        Ok(())
    };
    t.validate = |p: &PriorityClass| {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        let mut c = Vec::new();
        let system = name.starts_with("system-");
        if system
            && !system_classes()
                .iter()
                .any(|s| s["metadata"]["name"] == name)
        {
            c.push(Cause::forbidden(
                "metadata.name",
                "priority class names with 'system-' prefix are reserved for system use only",
            ));
        } else if !system && p.value > HIGHEST_USER_DEFINABLE {
            c.push(Cause::forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"
                ),
            ));
        }
        match p.preemption_policy.as_deref() {
            Some("Never" | "PreemptLowerPriority") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "preemptionPolicy",
                &json!(other),
                &["Never", "PreemptLowerPriority"],
            )),
        }
        c
    };
    t.validate_update = |n, o| {
        let mut c: Vec<Cause> = immutable("value", &json!(n.value), &json!(o.value))
            .into_iter()
            .collect();
        c.extend(immutable(
            "preemptionPolicy",
            &json!(n.preemption_policy),
            &json!(o.preemption_policy),
        ));
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Value", "integer", 0),
            ("Global-Default", "boolean", 0),
            ("Age", "string", 0),
            ("PreemptionPolicy", "string", 0),
        ])
    });
    t.row = |o| {
        vec![
            o["value"].clone(),
            json!(o["globalDefault"].as_bool().unwrap_or(false)),
            age(o),
            o["preemptionPolicy"].clone(),
        ]
    };
    t
}
