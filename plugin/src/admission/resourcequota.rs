//! ResourceQuota (upstream `plugin/pkg/admission/resourcequota` with the evaluators of
//! `pkg/quota/v1/evaluator/core`): a write that would take a namespace's usage past a
//! quota's hard limits is refused; an admitted one is charged to the quota's
//! `status.used` at once (compare-and-swap), before the quota controller recounts.

use super::list;
use apimachinery::resource::{Format, Quantity};
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::{Part, Registry};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type ResourceList = BTreeMap<String, Quantity>;

pub struct ResourceQuota {
    pub quotas: Arc<Registry>,
}

/// Compute resources a pod's containers may request or limit.
const COMPUTE: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn quantities(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::from_json(q)?)))
        .collect()
}

fn add_into(total: &mut ResourceList, other: &ResourceList) {
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
            u.insert("pods".into(), one);
            let spec = &obj["spec"];
            if matches!(
                obj["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            ) {
                return u;
            }
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
fn matches_scopes(quota: &Value, resource: &GroupResource, obj: &Value) -> bool {
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

fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Compute resources a quota constrains that some container leaves unset
/// (`must specify limits.cpu for: c`).
fn missing_specs(hard: &ResourceList, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["requests", "limits"] {
        for r in COMPUTE {
            let key = format!("{field}.{r}");
            let constrained =
                hard.contains_key(&key) || (field == "requests" && hard.contains_key(r));
            if !constrained {
                continue;
            }
            let missing: Vec<&str> = spec["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["resources"][field][r].is_null())
                .filter_map(|c| c["name"].as_str())
                .collect();
            if !missing.is_empty() {
                out.push(format!("{key} for: {}", missing.join(",")));
            }
        }
    }
    out
}

/// The check of one quota against a delta: Err(message) when it would be exceeded.
fn check(quota: &Value, delta: &ResourceList) -> Result<Option<Value>, String> {
    let name = quota["metadata"]["name"].as_str().unwrap_or_default();
    let hard = quantities(&quota["status"]["hard"]);
    let spec_hard = quantities(&quota["spec"]["hard"]);
    let relevant: Vec<&String> = delta
        .keys()
        .filter(|k| spec_hard.contains_key(*k))
        .collect();
    if relevant.is_empty() {
        return Ok(None);
    }
    let used = quantities(&quota["status"]["used"]);
    let unknown: Vec<&str> = relevant
        .iter()
        .filter(|k| !hard.contains_key(**k) || !used.contains_key(**k))
        .map(|k| k.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "status unknown for quota: {name}, resource: {}",
            unknown.join(",")
        ));
    }
    let mut requested = ResourceList::new();
    let mut used_exceeded = ResourceList::new();
    let mut limited = ResourceList::new();
    let mut new_used = used.clone();
    for k in relevant {
        let d = delta[k];
        let total = used[k].add(&d);
        if d > Quantity::zero(Format::DecimalSI) && total > hard[k] {
            requested.insert(k.clone(), d);
            used_exceeded.insert(k.clone(), used[k]);
            limited.insert(k.clone(), hard[k]);
        }
        new_used.insert(k.clone(), total);
    }
    if !requested.is_empty() {
        return Err(format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            pretty(&requested),
            pretty(&used_exceeded),
            pretty(&limited)
        ));
    }
    Ok(Some(json!(
        new_used
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect::<serde_json::Map<String, Value>>()
    )))
}

#[async_trait]
impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(obj) = obj else { return Ok(()) };
        if a.namespace.is_empty() || !a.subresource.is_empty() {
            return Ok(());
        }
        if !matches!(a.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        let quotas = list(&self.quotas, Some(a.namespace)).await;
        if quotas.is_empty() {
            return Ok(());
        }
        let mut delta = usage(&a.resource, obj);
        if let Some(old) = a.old.filter(|_| a.operation == Operation::Update) {
            for (k, q) in usage(&a.resource, old) {
                if let Some(d) = delta.get_mut(&k) {
                    *d = d.sub(&q);
                }
            }
        }
        let forbid = |msg: String| StatusError::forbidden(&a.resource, a.name, &msg);
        let applicable: Vec<&Value> = quotas
            .iter()
            .filter(|q| matches_scopes(q, &a.resource, obj))
            .collect();
        // Pods must state what a quota constrains.
        if a.is("", "pods") && a.operation == Operation::Create {
            for q in &applicable {
                let missing = missing_specs(&quantities(&q["spec"]["hard"]), &obj["spec"]);
                if !missing.is_empty() {
                    return Err(forbid(format!(
                        "failed quota: {}: must specify {}",
                        q["metadata"]["name"].as_str().unwrap_or_default(),
                        missing.join("; ")
                    )));
                }
            }
        }
        for q in &applicable {
            check(q, &delta).map_err(forbid)?;
        }
        // Charge each quota; the check is repeated on the object being replaced so that
        // concurrent writes cannot both take the last unit.
        for q in applicable {
            let name = q["metadata"]["name"].as_str().unwrap_or_default();
            let mut failure = None;
            let result = self
                .quotas
                .guaranteed_update(
                    Some(a.namespace),
                    name,
                    Part::Status,
                    a.dry_run,
                    &mut |cur| {
                        let mut cur = cur.cloned().ok_or_else(|| {
                            StatusError::not_found(&GroupResource::new("", "resourcequotas"), name)
                        })?;
                        match check(&cur, &delta) {
                            Ok(Some(used)) => cur["status"]["used"] = used,
                            Ok(None) => {}
                            Err(msg) => {
                                failure = Some(msg);
                                return Err(StatusError::conflict(
                                    &GroupResource::new("", "resourcequotas"),
                                    name,
                                    "quota exceeded",
                                ));
                            }
                        }
                        Ok(cur)
                    },
                )
                .await;
            if let Some(msg) = failure {
                return Err(forbid(msg));
            }
            if let Err(e) = result
                && e.code != 404
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_usage_counts_sidecars_and_init_peaks() {
        let pod = json!({"spec": {
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}]}});
        let u = usage(&GroupResource::new("", "pods"), &pod);
        assert_eq!(u["pods"].to_string(), "1");
        assert_eq!(u["requests.cpu"].to_string(), "2");
        assert_eq!(u["cpu"].to_string(), "2");
        assert_eq!(u["requests.memory"].to_string(), "64Mi");
        assert_eq!(u["limits.memory"].to_string(), "128Mi");
        assert_eq!(u["count/pods"].to_string(), "1");
    }

    #[test]
    fn exceeded_message() {
        let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1", "requests.cpu": "1"}},
            "status": {"hard": {"pods": "1", "requests.cpu": "1"}, "used": {"pods": "1", "requests.cpu": "500m"}}});
        let delta: ResourceList = [
            ("pods".to_string(), Quantity::from_units(1)),
            ("requests.cpu".to_string(), Quantity::parse("200m").unwrap()),
        ]
        .into();
        assert_eq!(
            check(&quota, &delta).unwrap_err(),
            "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
        );
    }
}
