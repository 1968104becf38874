//! The Deployment controller (upstream `pkg/controller/deployment`): one ReplicaSet per
//! pod template (named `<deployment>-<pod-template-hash>`, revision annotations), rolled
//! out with RollingUpdate (new set scaled up within maxSurge, old sets scaled down while
//! availability stays at `replicas - maxUnavailable`) or Recreate (old sets to zero
//! first), old sets beyond `revisionHistoryLimit` deleted, `ScalingReplicaSet` events,
//! and status with the Available and Progressing conditions. A paused or resized
//! deployment scales its sets in proportion without rolling out; a template rolled
//! back to an older set's makes it the newest revision (`kubectl rollout undo`); a
//! rollout that makes no progress for `progressDeadlineSeconds` is marked
//! ProgressDeadlineExceeded.

pub mod util;

use crate::controller_ref_manager::{claim_all, recheck_owner};
use crate::controller_utils::controller_of;
use crate::controller_utils::reference;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::labels::Selector;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use util::*;

pub struct DeploymentController {
    client: kube::Client,
    deployments: Arc<Informer<Deployment>>,
    sets: Arc<Informer<ReplicaSet>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

fn without_hash(t: Option<&PodTemplateSpec>) -> Option<PodTemplateSpec> {
    let mut t = t?.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(POD_TEMPLATE_HASH);
    }
    Some(t)
}

/// The Deployment's selector; None when it does not parse.
fn selector(d: &Deployment) -> Option<Selector> {
    let sel = serde_json::to_value(&d.spec.as_ref()?.selector).ok()?;
    Selector::from_label_selector(Some(&sel)).ok()
}

fn owner_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: name_of(d),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn name_of<K: kube::Resource>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

impl DeploymentController {
    pub fn new(
        client: kube::Client,
        deployments: Arc<Informer<Deployment>>,
        sets: Arc<Informer<ReplicaSet>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("deployment");
        let q = queue.clone();
        deployments.add_handler(move |d, _| q.add(key(d)));
        let q = queue.clone();
        let deployments2 = deployments.clone();
        sets.add_event_handler(move |change| {
            let (rs, deleted) = (change.object(), change.is_delete());
            let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
            for k in crate::controller_utils::OwnerKeys::of(&change, "Deployment").all() {
                q.add(k.clone());
            }
            if controller_of(&rs.metadata).is_none() && !deleted {
                // An orphan: the Deployments that select it may adopt it.
                let labels = rs.metadata.labels.clone().unwrap_or_default();
                for d in deployments2.store.state() {
                    if d.metadata.namespace.as_deref() == Some(ns)
                        && selector(&d).is_some_and(|s| !s.is_empty() && s.matches(&labels))
                    {
                        q.add(key(d.as_ref()));
                    }
                }
            }
        });
        Arc::new(DeploymentController {
            client,
            deployments,
            sets,
            queue,
            recorder,
        })
    }

    /// Upstream's `getReplicaSetsForDeployment`: the sets this Deployment controls,
    /// adopting orphans its selector matches and releasing its own that stopped matching.
    async fn claim_sets(&self, d: &Deployment) -> Result<Vec<Arc<ReplicaSet>>, String> {
        let ns = d.metadata.namespace.as_deref().unwrap_or_default();
        let sel = selector(d);
        let candidates = self
            .sets
            .store
            .state()
            .into_iter()
            .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns));
        let deployments = Api::<Deployment>::namespaced(self.client.clone(), ns);
        claim_all(
            candidates,
            &d.metadata,
            &owner_ref(d),
            &self.sets_api(ns),
            |rs| {
                let labels = rs.metadata.labels.clone().unwrap_or_default();
                sel.as_ref().is_some_and(|s| s.matches(&labels))
            },
            || recheck_owner(&deployments, &d.metadata),
        )
        .await
    }

    fn sets_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Scales a set (and records its desired/max annotations), with upstream's event.
    async fn scale(&self, d: &Deployment, rs: &ReplicaSet, to: i32) -> Result<(), String> {
        let from = rs_replicas(rs);
        let (surge, _) = surge_and_unavailable(d);
        let desired = replicas(d);
        if from == to
            && desired_annotation(rs) == Some(desired)
            && max_annotation(rs) == Some(desired + surge)
        {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": {"annotations": {DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: (desired + surge).to_string()}},
            "spec": {"replicas": to}});
        self.sets_api(rs.metadata.namespace.as_deref().unwrap_or_default())
            .patch(&name_of(rs), &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| e.to_string())?;
        if from != to {
            let verb = if to > from { "up" } else { "down" };
            self.recorder.eventf(
                reference(d),
                "Normal",
                "ScalingReplicaSet",
                "Scaling",
                format!(
                    "Scaled {verb} replica set {} from {from} to {to}",
                    name_of(rs)
                ),
            );
        }
        Ok(())
    }

    /// Reconciles one Deployment; Some(d) asks to be looked at again after d (the
    /// progress deadline).
    async fn sync(&self, k: &str) -> Result<Option<Duration>, String> {
        let (ns, name) = split(k);
        let Some(mut d) = self.deployments.store.get_in(ns, name) else {
            return Ok(None);
        };
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        if selector(&d).is_none_or(|s| s.is_empty()) {
            // Upstream refuses to act on a selector that would select every pod.
            return Ok(None);
        }
        let spec = d.spec.clone().unwrap_or_default();
        let mut sets = self.claim_sets(&d).await?;
        sets.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        let template = without_hash(Some(&spec.template));
        let (new, old): (Vec<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>) =
            sets.iter().cloned().partition(|rs| {
                without_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == template
            });
        let mut new = new.into_iter().next();
        let paused = spec.paused.unwrap_or(false);
        let desired = replicas(&d);
        let (surge, unavailable) = surge_and_unavailable(&d);
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        let mut total: i32 = sets.iter().map(|rs| rs_replicas(rs)).sum();
        let max_old_revision = old.iter().map(|rs| revision(rs)).max().unwrap_or(0);

        // A template rolled back to an older set's makes that set the newest revision.
        if let Some(rs) = &new
            && revision(rs) <= max_old_revision
        {
            new = Some(Arc::new(
                self.bump_revision(rs, max_old_revision + 1).await?,
            ));
        }
        if let Some(rs) = &new {
            d = self.record_revision(&d, revision(rs)).await?;
        }

        // Paused, or resized: scale the existing sets in proportion, no rollout.
        if paused || is_scaling_event(&d, &sets) {
            if !recreate {
                self.scale_proportionally(&d, new.as_ref(), &old).await?;
            }
            if paused {
                self.cleanup(&d, &old).await;
            }
            return self.update_status(&d, &sets, new.as_ref(), false).await;
        }

        let mut created_now = false;
        let new = match new {
            Some(rs) => rs,
            None => {
                // Recreate scales the new set up only once the old pods are gone.
                let initial = if recreate {
                    0
                } else if old.is_empty() {
                    desired
                } else {
                    (desired + surge - total).clamp(0, desired)
                };
                let created = self
                    .create_set(&d, &spec.template, max_old_revision + 1, initial, surge)
                    .await?;
                d = self.record_revision(&d, max_old_revision + 1).await?;
                total += initial;
                created_now = true;
                self.recorder.eventf(
                    reference(d.as_ref()),
                    "Normal",
                    "ScalingReplicaSet",
                    "Scaling",
                    format!(
                        "Scaled up replica set {} from 0 to {initial}",
                        name_of(&created)
                    ),
                );
                Arc::new(created)
            }
        };
        if recreate {
            let mut waiting = false;
            for rs in &old {
                if rs_replicas(rs) > 0 {
                    self.scale(&d, rs, 0).await?;
                    waiting = true;
                }
                if rs.status.as_ref().map(|s| s.replicas).unwrap_or(0) > 0 {
                    waiting = true;
                }
            }
            if !waiting && rs_replicas(&new) != desired {
                self.scale(&d, &new, desired).await?;
            }
        } else {
            // Scale the new set up within the surge (or down to the target).
            // As upstream, a sync that scales the new set stops there: the old sets are
            // scaled by the next sync, from fresh counts.
            let current = rs_replicas(&new);
            let target = if current > desired {
                desired
            } else {
                current + (desired + surge - total).max(0).min(desired - current)
            };
            if target != current {
                self.scale(&d, &new, target).await?;
                return self.update_status(&d, &sets, Some(&new), created_now).await;
            }
            // Scale old sets down while availability allows.
            let old_total: i32 = old.iter().map(|rs| rs_replicas(rs)).sum();
            if old_total > 0 {
                let all: i32 = sets
                    .iter()
                    .map(|rs| rs_replicas(rs))
                    .sum::<i32>()
                    .max(total);
                let min_available = desired - unavailable;
                let new_unavailable = rs_replicas(&new) - rs_available(&new);
                let mut budget = all - min_available - new_unavailable;
                // Unhealthy old replicas go first.
                let mut scaled: Vec<(Arc<ReplicaSet>, i32)> =
                    old.iter().map(|rs| (rs.clone(), rs_replicas(rs))).collect();
                for (rs, to) in scaled.iter_mut() {
                    if budget <= 0 {
                        break;
                    }
                    let unhealthy = (*to - rs_available(rs)).max(0).min(budget);
                    if unhealthy > 0 {
                        *to -= unhealthy;
                        budget -= unhealthy;
                    }
                }
                let available: i32 = sets.iter().map(|rs| rs_available(rs)).sum();
                let mut can_remove = (available - min_available).max(0).min(budget.max(0));
                for (_, to) in scaled.iter_mut() {
                    if can_remove <= 0 {
                        break;
                    }
                    let cut = (*to).min(can_remove);
                    *to -= cut;
                    can_remove -= cut;
                }
                for (rs, to) in scaled {
                    if to != rs_replicas(&rs) {
                        self.scale(&d, &rs, to).await?;
                    }
                }
            }
        }
        self.cleanup(&d, &old).await;
        self.update_status(&d, &sets, Some(&new), created_now).await
    }

    /// Upstream's `scale`: one active set takes the whole size; otherwise, during a
    /// rolling update, the sets share the change in proportion to their sizes, the
    /// rounding leftover going to the largest.
    async fn scale_proportionally(
        &self,
        d: &Deployment,
        new: Option<&Arc<ReplicaSet>>,
        old: &[Arc<ReplicaSet>],
    ) -> Result<(), String> {
        let desired = replicas(d);
        let all: Vec<&Arc<ReplicaSet>> = new.into_iter().chain(old.iter().rev()).collect();
        let mut active: Vec<&Arc<ReplicaSet>> = all
            .iter()
            .copied()
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        if active.len() <= 1 {
            let target = active.first().copied().or_else(|| all.first().copied());
            if let Some(rs) = target {
                self.scale(d, rs, desired).await?;
            }
            return Ok(());
        }
        if let Some(n) = new
            && rs_replicas(n) == desired
            && desired_annotation(n) == Some(desired)
            && rs_available(n) == desired
        {
            for rs in old.iter().filter(|rs| rs_replicas(rs) > 0) {
                self.scale(d, rs, 0).await?;
            }
            return Ok(());
        }
        let (surge, _) = surge_and_unavailable(d);
        let current: i32 = active.iter().map(|rs| rs_replicas(rs)).sum();
        let allowed = if desired > 0 { desired + surge } else { 0 };
        let to_add = allowed - current;
        // Largest first; among equals the newer when growing, the older when shrinking.
        active.sort_by(|a, b| {
            let age = a
                .metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp);
            rs_replicas(b)
                .cmp(&rs_replicas(a))
                .then(if to_add > 0 { age.reverse() } else { age })
        });
        let mut sizes: Vec<(&Arc<ReplicaSet>, i32)> = Vec::new();
        let mut added = 0;
        for rs in &active {
            let mut share = 0;
            if to_add != 0 {
                share = set_fraction(rs, d, surge);
                share = if to_add > 0 {
                    share.min(to_add - added)
                } else {
                    share.max(to_add - added)
                };
                added += share;
            }
            sizes.push((rs, rs_replicas(rs) + share));
        }
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (rs, size) in sizes {
            self.scale(d, rs, size).await?;
        }
        Ok(())
    }

    /// Makes `rs` revision `to`, remembering its earlier revision as upstream does.
    async fn bump_revision(&self, rs: &ReplicaSet, to: i64) -> Result<ReplicaSet, String> {
        let was = revision(rs).to_string();
        let mut history: Vec<String> = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_HISTORY))
            .map(|h| h.split(',').map(String::from).collect())
            .unwrap_or_default();
        history.push(was);
        let patch = serde_json::json!({"metadata": {"annotations": {
            REVISION: to.to_string(), REVISION_HISTORY: history.join(",")}}});
        self.sets_api(rs.metadata.namespace.as_deref().unwrap_or_default())
            .patch(&name_of(rs), &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| e.to_string())
    }

    /// The deployment's own revision annotation follows its newest set.
    /// Sets the revision annotation; returns the Deployment as now stored, which later
    /// writes of the same sync (the status) must start from.
    async fn record_revision(
        &self,
        d: &Arc<Deployment>,
        rev: i64,
    ) -> Result<Arc<Deployment>, String> {
        let current = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        if current.as_deref() == Some(rev.to_string().as_str()) {
            return Ok(d.clone());
        }
        // An update (the verb upstream's deployment-controller role has), guarded by
        // the cached resourceVersion.
        let mut next = Deployment::clone(d);
        next.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(REVISION.into(), rev.to_string());
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.replace(&name_of(d.as_ref()), &PostParams::default(), &next)
            .await
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    async fn create_set(
        &self,
        d: &Deployment,
        template: &PodTemplateSpec,
        revision: i64,
        initial: i32,
        surge: i32,
    ) -> Result<ReplicaSet, String> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(template, collision);
        let mut template = template.clone();
        let tm = template.metadata.get_or_insert_with(Default::default);
        tm.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let desired = replicas(d);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", name_of(d))),
                namespace: Some(ns.clone()),
                labels: tm.labels.clone(),
                annotations: Some(BTreeMap::from([
                    (REVISION.to_string(), revision.to_string()),
                    (DESIRED_REPLICAS.to_string(), desired.to_string()),
                    (MAX_REPLICAS.to_string(), (desired + surge).to_string()),
                ])),
                owner_references: Some(vec![owner_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(initial),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        self.sets_api(&ns)
            .create(&PostParams::default(), &rs)
            .await
            .map_err(|e| e.to_string())
    }

    /// Old sets with no replicas beyond `revisionHistoryLimit` (10), oldest first.
    async fn cleanup(&self, d: &Deployment, old: &[Arc<ReplicaSet>]) {
        let limit = d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let mut idle: Vec<&Arc<ReplicaSet>> = old
            .iter()
            .filter(|rs| {
                rs_replicas(rs) == 0 && rs.status.as_ref().map(|s| s.replicas).unwrap_or(0) == 0
            })
            .collect();
        if idle.len() <= limit {
            return;
        }
        idle.sort_by_key(|rs| revision(rs));
        let n = idle.len() - limit;
        for rs in idle.into_iter().take(n) {
            let _ = self
                .sets_api(rs.metadata.namespace.as_deref().unwrap_or_default())
                .delete(&name_of(rs.as_ref()), &DeleteParams::default())
                .await;
        }
    }

    /// Writes the status and the Available / Progressing conditions; returns when to
    /// look again for the progress deadline.
    async fn update_status(
        &self,
        d: &Deployment,
        sets: &[Arc<ReplicaSet>],
        new: Option<&Arc<ReplicaSet>>,
        created_now: bool,
    ) -> Result<Option<Duration>, String> {
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| sets.iter().map(|rs| f(rs)).sum::<i32>();
        let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
        let replicas_total = sum(&|rs| status_of(rs).replicas);
        let ready = sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0));
        let available = sum(&|rs| rs_available(rs));
        let updated = new.map(|rs| status_of(rs).replicas).unwrap_or(0);
        let desired = replicas(d);
        let (_, max_unavailable) = surge_and_unavailable(d);
        let spec = d.spec.clone().unwrap_or_default();
        let paused = spec.paused.unwrap_or(false);
        // math.MaxInt32 is upstream's "no deadline".
        let deadline = spec
            .progress_deadline_seconds
            .filter(|s| *s != i32::MAX)
            .map(|s| jiff::SignedDuration::from_secs(i64::from(s)));
        let now = Time(jiff::Timestamp::now());
        let old_status = d.status.clone().unwrap_or_default();
        let prior = old_status.conditions.clone().unwrap_or_default();
        let condition = |type_: &str, status: &str, reason: &str, message: String, fresh: bool| {
            let old = prior.iter().find(|c| c.type_ == type_);
            let unchanged = old.is_some_and(|c| c.status == status);
            DeploymentCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.clone()),
                last_update_time: if !fresh
                    && old.is_some_and(|c| {
                        c.reason.as_deref() == Some(reason)
                            && c.message.as_deref() == Some(&message)
                    }) {
                    old.and_then(|c| c.last_update_time.clone())
                } else {
                    Some(now.clone())
                },
                last_transition_time: if unchanged {
                    old.and_then(|c| c.last_transition_time.clone())
                } else {
                    Some(now.clone())
                },
            }
        };
        let available_condition = if available >= desired - max_unavailable {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                false,
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                false,
            )
        };
        let mut conditions = vec![available_condition];
        let prior_progress = prior.iter().find(|c| c.type_ == "Progressing");
        let prior_reason = prior_progress.and_then(|c| c.reason.as_deref());
        let mut recheck = None;
        let progressing = if paused {
            Some(condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                false,
            ))
        } else if let Some(rs) = new {
            let name = name_of(rs.as_ref());
            let complete = updated == desired && replicas_total == desired && available >= desired;
            // Upstream's DeploymentProgressing: more updated, ready or available
            // replicas, or fewer old ones, than the last status said.
            let old_old =
                old_status.replicas.unwrap_or(0) - old_status.updated_replicas.unwrap_or(0);
            let progressed = updated > old_status.updated_replicas.unwrap_or(0)
                || replicas_total - updated < old_old
                || ready > old_status.ready_replicas.unwrap_or(0)
                || available > old_status.available_replicas.unwrap_or(0);
            let timed_out = |c: &DeploymentCondition| match c.reason.as_deref() {
                Some("NewReplicaSetAvailable") => false,
                Some("ProgressDeadlineExceeded") => true,
                _ => match (deadline, &c.last_update_time) {
                    (Some(dl), Some(t)) => t.0 + dl < now.0,
                    _ => false,
                },
            };
            Some(if complete {
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet {name:?} has successfully progressed."),
                    false,
                )
            } else if created_now {
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set {name:?}"),
                    true,
                )
            } else if prior_reason == Some("DeploymentPaused") {
                condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentResumed",
                    "Deployment is resumed".into(),
                    true,
                )
            } else if progressed {
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet {name:?} is progressing."),
                    true,
                )
            } else if prior_progress.is_some_and(timed_out) {
                condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet {name:?} has timed out progressing."),
                    false,
                )
            } else if let Some(c) = prior_progress {
                c.clone()
            } else {
                condition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    format!("Found new replica set {name:?}"),
                    true,
                )
            })
        } else {
            prior_progress.cloned()
        };
        if let Some(c) = progressing {
            // Not finished: look again when the deadline would pass.
            if let (Some(dl), Some(t), Some("True" | "Unknown")) =
                (deadline, &c.last_update_time, Some(c.status.as_str()))
                && c.reason.as_deref() != Some("NewReplicaSetAvailable")
                && !paused
            {
                let left = (t.0 + dl).duration_since(now.0);
                recheck =
                    Some(Duration::try_from(left).unwrap_or_default() + Duration::from_secs(1));
            }
            conditions.push(c);
        }
        let status = DeploymentStatus {
            observed_generation: d.metadata.generation,
            replicas: Some(replicas_total),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((desired - available).max(0)),
            conditions: Some(conditions),
            collision_count: d.status.as_ref().and_then(|s| s.collision_count),
            terminating_replicas: None,
        };
        let same = d.status.as_ref().is_some_and(|s| {
            let strip = |c: &Option<Vec<DeploymentCondition>>| {
                c.clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| (c.type_, c.status, c.reason, c.message))
                    .collect::<Vec<_>>()
            };
            s.replicas == status.replicas
                && s.updated_replicas == status.updated_replicas
                && s.ready_replicas == status.ready_replicas
                && s.available_replicas == status.available_replicas
                && s.unavailable_replicas == status.unavailable_replicas
                && s.observed_generation == status.observed_generation
                && strip(&s.conditions) == strip(&status.conditions)
        });
        if same {
            return Ok(recheck);
        }
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        crate::controller_utils::update_status(&api, d, &serde_json::json!({"status": status}))
            .await
            .map(|_| recheck)
    }
}

impl Reconciler for DeploymentController {
    type Error = String;

    fn name(&self) -> &str {
        "deployment"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.deployments.clone(), self.sets.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        DeploymentController::sync(self, key)
            .await
            .map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, template};
    use serde_json::json;

    /// One sync of a new Deployment: the ReplicaSet it creates (or not, when paused),
    /// its size, and the template hash label.
    #[tokio::test]
    async fn sync_creates_the_new_replica_set() {
        // (case, replicas, paused, want sets, want replicas of the set)
        let cases = [
            ("three", 3, false, 1, 3),
            ("zero", 0, false, 1, 0),
            ("paused", 2, true, 0, 0),
        ];
        for (name, replicas, paused, want_sets, want_replicas) in cases {
            let env = Env::new(&format!("deploy-{name}")).await;
            let (deployments, sets) = (env.informer::<Deployment>(), env.informer::<ReplicaSet>());
            let c = DeploymentController::new(
                env.client.clone(),
                deployments.clone(),
                sets.clone(),
                env.recorder("deployment-controller"),
            );
            env.start().await;
            let d: Deployment = env
                .create(json!({"metadata": {"name": "web"}, "spec": {
                    "replicas": replicas, "paused": paused,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": template(json!({"app": "web"}))}}))
                .await;
            env.cached(&deployments, &[&d]).await;
            sets.synced().await;
            env.sync(c.as_ref(), &env.key("web")).await;

            let got = env.list::<ReplicaSet>().await;
            assert_eq!(got.len(), want_sets, "{name}: replica sets");
            if let Some(rs) = got.first() {
                let spec = rs.spec.as_ref().unwrap();
                assert_eq!(spec.replicas, Some(want_replicas), "{name}");
                let labels = rs.metadata.labels.clone().unwrap_or_default();
                assert!(
                    labels.contains_key("pod-template-hash"),
                    "{name}: {labels:?}"
                );
                assert_eq!(
                    controller_of(&rs.metadata).map(|o| o.uid.clone()),
                    d.metadata.uid.clone(),
                    "{name}: owner"
                );
            }
        }
    }
}
