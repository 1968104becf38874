//! The StatefulSet controller (upstream `pkg/controller/statefulset`): pods named
//! `<set>-<ordinal>` with stable hostnames under `serviceName`, their PersistentVolumeClaims
//! (`<template>-<set>-<ordinal>`) created from `volumeClaimTemplates` before them;
//! OrderedReady creates one ordinal at a time once the lower ones are Running and Ready
//! and removes the highest first, Parallel acts on all at once; RollingUpdate replaces
//! pods of an old revision from the highest ordinal down to `partition`, one at a time.

use crate::controller_utils::{
    controller_of, is_available, is_ready, recheck_availability, reference,
};
use crate::daemon::REVISION_HASH;
use crate::deployment::util::template_hash;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub struct StatefulSetController {
    client: kube::Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

fn ordinal(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn running_and_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && is_ready(p)
}

impl StatefulSetController {
    pub fn new(
        client: kube::Client,
        sets: Arc<Informer<StatefulSet>>,
        pods: Arc<Informer<Pod>>,
        revisions: Arc<Informer<ControllerRevision>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("statefulset");
        let q = queue.clone();
        sets.add_handler(move |s, _| q.add(key(s)));
        let q = queue.clone();
        pods.add_event_handler(move |change| {
            for k in crate::controller_utils::OwnerKeys::of(&change, "StatefulSet").all() {
                q.add(k.clone());
            }
        });
        Arc::new(StatefulSetController {
            client,
            sets,
            pods,
            revisions,
            queue,
            recorder,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(set) = self.sets.store.get_in(ns, name) else {
            return Ok(());
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let spec = set.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let hash = template_hash(
            &spec.template,
            set.status.as_ref().and_then(|s| s.collision_count),
        );
        let in_use: std::collections::BTreeSet<String> = self
            .pods
            .store
            .state()
            .iter()
            .filter(|p| controller_of(&p.metadata).is_some_and(|o| o.uid == uid))
            .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_HASH).cloned())
            .collect();
        let owner = crate::history::Owner {
            namespace: ns,
            name,
            owner: set.controller_owner_ref(&()).unwrap_or_default(),
            template: &spec.template,
            history_limit: spec.revision_history_limit.unwrap_or(10),
        };
        let (revision, _) =
            crate::history::ensure_current(&self.client, &self.revisions, &owner, &hash, &in_use)
                .await?;
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut pods: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
        for p in self.pods.store.state() {
            if p.metadata.namespace.as_deref() == Some(ns)
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
                && let Some(i) = ordinal(name, p.metadata.name.as_deref().unwrap_or_default())
            {
                pods.insert(i, p);
            }
        }
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        let wanted = start..start + replicas;
        // Create missing pods (in order unless Parallel), replace failed ones.
        for i in wanted.clone() {
            match pods.get(&i) {
                Some(p)
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
                        && p.metadata.deletion_timestamp.is_none() =>
                {
                    let _ = pods_api
                        .delete(
                            p.metadata.name.as_deref().unwrap_or_default(),
                            &DeleteParams::default(),
                        )
                        .await;
                    if !parallel {
                        break;
                    }
                }
                Some(p) => {
                    if !parallel
                        && (p.metadata.deletion_timestamp.is_some() || !running_and_ready(p))
                    {
                        break;
                    }
                }
                None => {
                    self.create_pod(&set, i, &revision, &pods_api).await?;
                    if !parallel {
                        break;
                    }
                }
            }
        }
        self.claim_retention(&set, &pods, &wanted).await?;
        // Scale down: the highest ordinals beyond replicas, one at a time unless Parallel.
        let condemned: Vec<&Arc<Pod>> = pods
            .iter()
            .rev()
            .filter(|(i, _)| !wanted.contains(i))
            .map(|(_, p)| p)
            .collect();
        let all_healthy = pods
            .values()
            .filter(|p| {
                wanted.contains(
                    &ordinal(name, p.metadata.name.as_deref().unwrap_or_default()).unwrap_or(-1),
                )
            })
            .all(|p| running_and_ready(p));
        for p in condemned {
            if p.metadata.deletion_timestamp.is_some() {
                if parallel { continue } else { break }
            }
            if !parallel && !all_healthy {
                break;
            }
            let pname = p.metadata.name.clone().unwrap_or_default();
            let _ = pods_api.delete(&pname, &DeleteParams::default()).await;
            self.recorder.eventf(
                reference(set.as_ref()),
                "Normal",
                "SuccessfulDelete",
                "Delete",
                format!("delete Pod {pname} in StatefulSet {name} successful"),
            );
            if !parallel {
                break;
            }
        }
        // RollingUpdate: the highest ordinal of an old revision, down to the partition.
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let partition = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let in_range: Vec<&Arc<Pod>> = wanted.clone().filter_map(|i| pods.get(&i)).collect();
        if rolling
            && in_range.len() as i32 == replicas
            && in_range
                .iter()
                .all(|p| running_and_ready(p) && p.metadata.deletion_timestamp.is_none())
        {
            let old = wanted
                .clone()
                .rev()
                .filter(|i| *i >= start + partition)
                .filter_map(|i| pods.get(&i))
                .find(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(REVISION_HASH))
                        != Some(&revision)
                });
            if let Some(p) = old {
                let _ = pods_api
                    .delete(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::default(),
                    )
                    .await;
            }
        }
        // Status.
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let live: Vec<&Arc<Pod>> = pods
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if let Some(after) = recheck_availability(live.iter().map(|p| p.as_ref()), min_ready) {
            self.queue.add_after(k.to_string(), after);
        }
        let updated = live
            .iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_HASH))
                    == Some(&revision)
            })
            .count() as i32;
        let status = StatefulSetStatus {
            replicas: live.len() as i32,
            ready_replicas: Some(live.iter().filter(|p| is_ready(p)).count() as i32),
            available_replicas: Some(
                live.iter().filter(|p| is_available(p, min_ready)).count() as i32
            ),
            current_replicas: Some(updated),
            updated_replicas: Some(updated),
            current_revision: Some(revision.clone()),
            update_revision: Some(revision.clone()),
            observed_generation: set.metadata.generation,
            collision_count: set.status.as_ref().and_then(|s| s.collision_count),
            conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if set.status.as_ref() != Some(&status) {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            crate::controller_utils::update_status(
                &api,
                set.as_ref(),
                &serde_json::json!({"status": status}),
            )
            .await?;
        }
        Ok(())
    }

    /// `persistentVolumeClaimRetentionPolicy` (upstream's claim owner references): with
    /// whenDeleted=Delete a claim is owned by the set, with whenScaled=Delete the claim
    /// of a condemned ordinal by its pod, so the garbage collector removes it with them;
    /// Retain takes those references away again.
    async fn claim_retention(
        &self,
        set: &StatefulSet,
        pods: &BTreeMap<i32, Arc<Pod>>,
        wanted: &std::ops::Range<i32>,
    ) -> Result<(), String> {
        let spec = set.spec.clone().unwrap_or_default();
        let Some(policy) = spec.persistent_volume_claim_retention_policy.clone() else {
            return Ok(());
        };
        let delete = |v: &Option<String>| v.as_deref() == Some("Delete");
        let (when_deleted, when_scaled) =
            (delete(&policy.when_deleted), delete(&policy.when_scaled));
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let set_uid = set.metadata.uid.clone().unwrap_or_default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for (i, pod) in pods {
            let condemned = !wanted.contains(i);
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            for t in spec.volume_claim_templates.iter().flatten() {
                let claim_name = format!(
                    "{}-{set_name}-{i}",
                    t.metadata.name.as_deref().unwrap_or_default()
                );
                let Some(claim) = claims
                    .get_opt(&claim_name)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    continue;
                };
                let mut refs: Vec<OwnerReference> = claim
                    .metadata
                    .owner_references
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.uid != set_uid && r.uid != pod_uid)
                    .collect();
                if condemned && when_scaled {
                    refs.push(OwnerReference {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        uid: pod_uid.clone(),
                        controller: Some(false),
                        block_owner_deletion: Some(true),
                    });
                } else if when_deleted {
                    refs.push(set.controller_owner_ref(&()).unwrap_or_default());
                }
                let before = claim.metadata.owner_references.clone().unwrap_or_default();
                if before == refs {
                    continue;
                }
                let mut next = claim.clone();
                next.metadata.owner_references = (!refs.is_empty()).then_some(refs);
                claims
                    .replace(&claim_name, &PostParams::default(), &next)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn create_pod(
        &self,
        set: &StatefulSet,
        i: i32,
        revision: &str,
        api: &Api<Pod>,
    ) -> Result<(), String> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let pod_name = format!("{set_name}-{i}");
        let spec = set.spec.clone().unwrap_or_default();
        // Claims first, from the templates.
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
        let mut volumes: Vec<Volume> = Vec::new();
        for t in spec.volume_claim_templates.iter().flatten() {
            let template_name = t.metadata.name.clone().unwrap_or_default();
            let claim_name = format!("{template_name}-{pod_name}");
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            match claims.create(&PostParams::default(), &claim).await {
                Ok(_) => self.recorder.eventf(
                    reference(set),
                    "Normal",
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                    ),
                ),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.to_string()),
            }
            volumes.push(Volume {
                name: template_name,
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name,
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        let tm = spec.template.metadata.clone().unwrap_or_default();
        let mut labels = tm.labels.unwrap_or_default();
        labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
        labels.insert(POD_INDEX_LABEL.into(), i.to_string());
        labels.insert(REVISION_HASH.into(), revision.into());
        let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
        pod_spec.hostname = Some(pod_name.clone());
        pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
        let existing = pod_spec.volumes.get_or_insert_with(Vec::new);
        for v in volumes {
            existing.retain(|e| e.name != v.name);
            existing.push(v);
        }
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(pod_name.clone()),
                namespace: Some(ns),
                labels: Some(labels),
                annotations: tm.annotations,
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "StatefulSet".into(),
                    name: set_name.clone(),
                    uid: set.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(pod_spec),
            status: None,
        };
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.recorder.eventf(
                    reference(set),
                    "Normal",
                    "SuccessfulCreate",
                    "Create",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => {
                self.recorder.eventf(
                    reference(set),
                    "Warning",
                    "FailedCreate",
                    "Create",
                    format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                );
                Err(e.to_string())
            }
        }
    }
}

impl Reconciler for StatefulSetController {
    type Error = String;

    fn name(&self) -> &str {
        "statefulset"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.sets.clone(), self.pods.clone(), self.revisions.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        StatefulSetController::sync(self, key)
            .await
            .map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, template};
    use serde_json::json;

    /// One sync: OrderedReady creates ordinal 0 and waits for it, Parallel creates all;
    /// both record the current revision.
    #[tokio::test]
    async fn sync_creates_pods_by_policy() {
        let cases = [
            ("ordered", "OrderedReady", vec!["web-0"]),
            ("parallel", "Parallel", vec!["web-0", "web-1", "web-2"]),
        ];
        for (name, policy, want) in cases {
            let env = Env::new(&format!("sts-{name}")).await;
            let (sets, pods, revisions) = (
                env.informer::<StatefulSet>(),
                env.informer::<Pod>(),
                env.informer::<ControllerRevision>(),
            );
            let c = StatefulSetController::new(
                env.client.clone(),
                sets.clone(),
                pods.clone(),
                revisions.clone(),
                env.recorder("statefulset-controller"),
            );
            env.start().await;
            let sts: StatefulSet = env
                .create(json!({"metadata": {"name": "web"}, "spec": {
                    "replicas": 3, "serviceName": "web", "podManagementPolicy": policy,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": template(json!({"app": "web"}))}}))
                .await;
            env.cached(&sets, &[&sts]).await;
            pods.synced().await;
            revisions.synced().await;
            env.sync(c.as_ref(), &env.key("web")).await;

            let names: Vec<String> = env
                .list::<Pod>()
                .await
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            assert_eq!(names, want, "{name}: pods");
            assert_eq!(
                env.list::<ControllerRevision>().await.len(),
                1,
                "{name}: revisions"
            );
        }
    }
}
