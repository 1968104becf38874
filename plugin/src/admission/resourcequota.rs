//! ResourceQuota (upstream `plugin/pkg/admission/resourcequota` using the shared
//! evaluators of `apiserver::quota`): a write that would take a namespace's usage past a
//! quota's hard limits is refused; an admitted one is charged to the quota's
//! `status.used` at once (compare-and-swap), before the quota controller recounts.

use super::list;
use apimachinery::resource::{Format, Quantity};
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::quota::{COMPUTE, ResourceList, matches_scopes, quantities, usage};
use apiserver::registry::generic::{Part, Registry};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct ResourceQuota {
    pub quotas: Arc<Registry>,
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
