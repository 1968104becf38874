//! Quota evaluation (upstream `k8s.io/apiserver/pkg/quota/v1` with the core evaluators
//! of `pkg/quota/v1/evaluator/core`): what an object counts for against a ResourceQuota
//! and whether a quota's scopes cover it. Shared by the ResourceQuota admission plugin
//! (charging at admission) and the quota controller (recounting).

use apimachinery::GroupResource;
use apimachinery::resource::Quantity;
use serde_json::Value;
use std::collections::BTreeMap;

pub type ResourceList = BTreeMap<String, Quantity>;

/// Compute resources a pod's containers may request or limit.
pub const COMPUTE: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

pub fn quantities(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::from_json(q)?)))
        .collect()
}

pub fn add_into(total: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        let sum = total.get(k).map(|t| t.add(q)).unwrap_or(*q);
        total.insert(k.clone(), sum);
    }
}

fn max_into(total: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        if total.get(k).is_none_or(|t| q > t) {
            total.insert(k.clone(), *q);
        }
    }
}

/// A pod's effective requests or limits (`field`): the app containers plus restartable
/// init containers (sidecars), or the largest plain init container if more, plus the
/// pod overhead.
pub fn pod_resources(spec: &Value, field: &str) -> ResourceList {
    let mut total = ResourceList::new();
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let r = quantities(&c["resources"][field]);
        if c["restartPolicy"] == "Always" {
            add_into(&mut sidecars, &r);
        } else {
            // A plain init container runs next to the sidecars started before it.
            let mut with_sidecars = sidecars.clone();
            add_into(&mut with_sidecars, &r);
            max_into(&mut init_peak, &with_sidecars);
        }
    }
    for c in spec["containers"].as_array().into_iter().flatten() {
        add_into(&mut total, &quantities(&c["resources"][field]));
    }
    add_into(&mut total, &sidecars);
    max_into(&mut total, &init_peak);
    add_into(&mut total, &quantities(&spec["overhead"]));
    total
}

fn is_best_effort(spec: &Value) -> bool {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(|k| spec[k].as_array().into_iter().flatten())
        .all(|c| {
            quantities(&c["resources"]["requests"]).is_empty()
                && quantities(&c["resources"]["limits"]).is_empty()
        })
}

/// Upstream's `QuotaV1Pod`: a pod charges compute until it is terminal or its deletion
/// grace period has run out.
fn counts_compute(pod: &Value) -> bool {
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let deleting = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match (
        deleting,
        pod["metadata"]["deletionGracePeriodSeconds"].as_i64(),
    ) {
        (Some(at), Some(grace)) => {
            jiff::Timestamp::now() <= at + jiff::SignedDuration::from_secs(grace)
        }
        _ => true,
    }
}

/// What one object counts for (upstream's evaluators' `Usage`).
pub fn usage(resource: &GroupResource, obj: &Value) -> ResourceList {
    let mut u = ResourceList::new();
    let one = Quantity::from_units(1);
    let count = if resource.group.is_empty() {
        format!("count/{}", resource.resource)
    } else {
        format!("count/{}.{}", resource.resource, resource.group)
    };
    u.insert(count, one);
    match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "pods") => {
            // `count/pods` tracks every stored pod; "pods" and compute resources only
            // the ones still alive.
            if !counts_compute(obj) {
                return u;
            }
            u.insert("pods".into(), one);
            let spec = &obj["spec"];
            for (name, q) in pod_resources(spec, "requests") {
                if COMPUTE.contains(&name.as_str()) {
                    u.insert(name.clone(), q);
                }
                u.insert(format!("requests.{name}"), q);
            }
            for (name, q) in pod_resources(spec, "limits") {
                u.insert(format!("limits.{name}"), q);
            }
        }
        ("", "services") => {
            u.insert("services".into(), one);
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if ty == "LoadBalancer" {
                u.insert("services.loadbalancers".into(), one);
            }
            if ty == "NodePort" || ty == "LoadBalancer" {
                let ports = obj["spec"]["ports"].as_array().map_or(0, |p| p.len());
                u.insert(
                    "services.nodeports".into(),
                    Quantity::from_units(ports as i64),
                );
            }
        }
        ("", "persistentvolumeclaims") => {
            u.insert("persistentvolumeclaims".into(), one);
            let storage = Quantity::from_json(&obj["spec"]["resources"]["requests"]["storage"]);
            if let Some(s) = storage {
                u.insert("requests.storage".into(), s);
            }
            if let Some(class) = obj["spec"]["storageClassName"].as_str() {
                let prefix = format!("{class}.storageclass.storage.k8s.io/");
                u.insert(format!("{prefix}persistentvolumeclaims"), one);
                if let Some(s) = storage {
                    u.insert(format!("{prefix}requests.storage"), s);
                }
            }
        }
        ("", r @ ("configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas")) => {
            u.insert(r.to_string(), one);
        }
        _ => {}
    }
    u
}

/// Whether a quota's scopes cover this object (only pods are scoped).
pub fn matches_scopes(quota: &Value, resource: &GroupResource, obj: &Value) -> bool {
    let mut scopes: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s.as_str()?.to_string(), "Exists".to_string(), Vec::new())))
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        scopes.push((
            e["scopeName"].as_str().unwrap_or_default().to_string(),
            e["operator"].as_str().unwrap_or_default().to_string(),
            values,
        ));
    }
    if scopes.is_empty() {
        return true;
    }
    if !resource.group.is_empty() || resource.resource != "pods" {
        return false;
    }
    let spec = &obj["spec"];
    scopes
        .iter()
        .all(|(scope, op, values)| match scope.as_str() {
            "Terminating" => spec["activeDeadlineSeconds"].is_number(),
            "NotTerminating" => !spec["activeDeadlineSeconds"].is_number(),
            "BestEffort" => is_best_effort(spec),
            "NotBestEffort" => !is_best_effort(spec),
            "PriorityClass" => {
                let class = spec["priorityClassName"].as_str().unwrap_or_default();
                match op.as_str() {
                    "In" => values.iter().any(|v| v == class),
                    "NotIn" => !values.iter().any(|v| v == class),
                    "Exists" => !class.is_empty(),
                    "DoesNotExist" => class.is_empty(),
                    _ => false,
                }
            }
            "CrossNamespacePodAffinity" => {
                let terms = |kind: &str| {
                    ["requiredDuringSchedulingIgnoredDuringExecution"]
                        .into_iter()
                        .flat_map(|f| spec["affinity"][kind][f].as_array().into_iter().flatten())
                        .any(|t| {
                            t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
                                || t["namespaceSelector"].is_object()
                        })
                };
                terms("podAffinity") || terms("podAntiAffinity")
            }
            _ => false,
        })
}
