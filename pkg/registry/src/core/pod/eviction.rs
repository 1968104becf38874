//! `POST pods/<name>/eviction` (upstream `pkg/registry/core/pod/storage/eviction.go`): a
//! deletion that respects the pod's PodDisruptionBudget. An eviction the budget cannot
//! afford is refused with 429 so that `kubectl drain` retries; an allowed one takes one
//! disruption from the budget's status before the pod is deleted.

use apimachinery::labels::Selector;
use apimachinery::{GroupResource, StatusError};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use apiserver::registry::options::{DeleteOptions, ListOptions};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Eviction {
    pub pods: Arc<Registry>,
    pub budgets: Arc<Registry>,
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Pods whose disruption no budget guards: finished, not yet running, or already going.
fn ignores_budget(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Pending")
    ) || meta::deletion_timestamp(pod).is_some()
}

fn too_many(message: &str, cause: Option<String>) -> StatusError {
    let mut e = StatusError::too_many_requests(10);
    e.message = message.to_string();
    if let Some(c) = cause {
        e.details = Some(
            json!({"causes": [{"reason": "DisruptionBudget", "message": c}], "retryAfterSeconds": 10}),
        );
    }
    e
}

impl Eviction {
    /// Takes one disruption from the pod's budget, or says why it cannot.
    async fn take_disruption(
        &self,
        ns: &str,
        pod: &Value,
        dry_run: bool,
    ) -> Result<(), StatusError> {
        let list = self.budgets.list(Some(ns), &ListOptions::cached()).await?;
        let pod_labels = labels(pod);
        let matching: Vec<&Value> = list
            .items
            .iter()
            .map(|o| &o.value)
            // In policy/v1 an empty selector selects every pod; an absent one none.
            .filter(|pdb| {
                let sel = &pdb["spec"]["selector"];
                sel.is_object()
                    && Selector::from_label_selector(Some(sel))
                        .is_ok_and(|s| s.matches(&pod_labels))
            })
            .collect();
        let pdb = match matching.as_slice() {
            [] => return Ok(()),
            [one] => *one,
            _ => {
                return Err(StatusError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        };
        let name = meta::name(pdb).to_string();
        let pod_name = meta::name(pod).to_string();
        let gr = GroupResource::new("policy", "poddisruptionbudgets");
        self.budgets
            .guaranteed_update(Some(ns), &name, Part::Status, dry_run, &mut |cur| {
                let mut next = cur.cloned().ok_or_else(|| StatusError::not_found(&gr, &name))?;
                let st = &next["status"];
                let generation = next["metadata"]["generation"].as_i64().unwrap_or(0);
                if st["observedGeneration"].as_i64().unwrap_or(0) < generation {
                    return Err(too_many(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        Some(format!("The disruption budget {name} is still being processed by the server.")),
                    ));
                }
                let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
                if allowed <= 0 {
                    return Err(too_many(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        Some(format!(
                            "The disruption budget {name} needs {} healthy pods and has {} currently",
                            st["desiredHealthy"].as_i64().unwrap_or(0),
                            st["currentHealthy"].as_i64().unwrap_or(0)
                        )),
                    ));
                }
                next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                if !next["status"]["disruptedPods"].is_object() {
                    next["status"]["disruptedPods"] = json!({});
                }
                next["status"]["disruptedPods"][&pod_name] = json!(meta::now_rfc3339());
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            })
            .await?;
        Ok(())
    }
}

impl Eviction {
    /// Records why the pod goes before it is deleted (upstream's `addConditionAndDeletePod`):
    /// the `DisruptionTarget` condition a Job's pod failure policy can match on.
    async fn mark_disruption_target(
        &self,
        ns: Option<&str>,
        name: &str,
        precondition_uid: Option<&str>,
    ) -> Result<(), StatusError> {
        let gr = GroupResource::new("", "pods");
        self.pods
            .guaranteed_update(ns, name, Part::Status, false, &mut |cur| {
                let Some(cur) = cur else {
                    return Err(StatusError::not_found(&gr, name));
                };
                if let Some(uid) = precondition_uid
                    && uid != meta::uid(cur)
                {
                    return Err(StatusError::conflict(
                        &gr,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(cur)
                        ),
                    ));
                }
                let mut next = cur.clone();
                set_condition(
                    &mut next,
                    json!({"type": "DisruptionTarget", "status": "True",
                        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}),
                );
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            })
            .await
            .map(|_| ())
    }
}

/// Sets a pod condition as upstream's `UpdatePodCondition`: the transition time moves
/// only when the status changes.
fn set_condition(pod: &mut Value, mut cond: Value) {
    let now = meta::now_rfc3339();
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let conditions = pod["status"]["conditions"].as_array_mut().unwrap();
    match conditions.iter_mut().find(|c| c["type"] == cond["type"]) {
        Some(existing) => {
            cond["lastTransitionTime"] = if existing["status"] == cond["status"] {
                existing["lastTransitionTime"].clone()
            } else {
                json!(now)
            };
            if !existing["lastProbeTime"].is_null() {
                cond["lastProbeTime"] = existing["lastProbeTime"].clone();
            }
            *existing = cond;
        }
        None => {
            cond["lastTransitionTime"] = json!(now);
            conditions.push(cond);
        }
    }
}

#[async_trait]
impl SubresourceHandler for Eviction {
    async fn create(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<(u16, Value), StatusError> {
        let ns_name = ns.unwrap_or_default();
        let body_name = body["metadata"]["name"].as_str().unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(StatusError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name} != {body_name}"
            )));
        }
        let pod = self.pods.get(ns, name).await?;
        if !ignores_budget(&pod) {
            self.take_disruption(ns_name, &pod, dry_run).await?;
        }
        let opts_body = &body["deleteOptions"];
        let opts = DeleteOptions {
            grace_period_seconds: opts_body["gracePeriodSeconds"].as_i64(),
            propagation_policy: opts_body["propagationPolicy"].as_str().map(String::from),
            precondition_uid: opts_body["preconditions"]["uid"].as_str().map(String::from),
            precondition_rv: opts_body["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
            dry_run: dry_run
                || opts_body["dryRun"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty()),
        };
        if !opts.dry_run {
            self.mark_disruption_target(ns, name, opts.precondition_uid.as_deref())
                .await?;
        }
        self.pods.delete(ns, name, &opts).await?;
        Ok((201, super::created_status()))
    }
}
