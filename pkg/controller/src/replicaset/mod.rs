//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps as many active
//! pods matching the selector as `spec.replicas`, adopting matching orphans and releasing
//! owned pods that stopped matching, creating in slow-start batches (1, 2, 4, ... up to
//! 500 a sync), deleting the pods upstream's ranking puts first, and reporting status
//! (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration)
//! with `SuccessfulCreate` / `SuccessfulDelete` / `FailedCreate` events.

use crate::controller_ref_manager::{claim_all, recheck_owner};
use crate::controller_utils::{
    Expectations, OwnerKeys, controller_of, deletion_order, is_active, is_available, is_ready,
    recheck_availability, reference,
};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::labels::Selector;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use std::sync::Arc;

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
const BURST_REPLICAS: usize = 500;
const SLOW_START_INITIAL_BATCH: usize = 1;

/// The kind the controller manages: ReplicaSets, or ReplicationControllers seen as
/// ReplicaSets (upstream runs the same controller for both the same way).
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const REPLICA_SET: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
};

pub const REPLICATION_CONTROLLER: Kind = Kind {
    group: "",
    version: "v1",
    kind: "ReplicationController",
    plural: "replicationcontrollers",
};

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

pub struct ReplicaSetController {
    kind: &'static Kind,
    client: kube::Client,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<Queue>,
    expectations: Arc<Expectations>,
    recorder: Arc<Recorder>,
}

fn selector(rs: &ReplicaSet) -> Option<Selector> {
    let sel = rs
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.selector).ok())??;
    Selector::from_label_selector(Some(&sel)).ok()
}

fn labels(p: &Pod) -> std::collections::BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

impl ReplicaSetController {
    pub fn new(
        kind: &'static Kind,
        client: kube::Client,
        sets: Arc<Informer<ReplicaSet>>,
        pods: Arc<Informer<Pod>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        // Upstream's queue names: the ReplicationManager reuses this controller.
        let queue = Queue::named(if kind.kind == "ReplicaSet" {
            "replicaset"
        } else {
            "replicationmanager"
        });
        let expectations = Arc::new(Expectations::default());
        {
            let q = queue.clone();
            sets.add_handler(move |rs, _| q.add(key(rs)));
        }
        {
            let (q, exp, sets2) = (queue.clone(), expectations.clone(), sets.clone());
            pods.add_event_handler(move |change| {
                let (pod, deleted) = (change.object(), change.is_delete());
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                // An orphan adopted later is an update, not taken for a creation.
                let observed = crate::controller_utils::observed(&change);
                let owners = OwnerKeys::of(&change, kind.kind);
                if let Some(k) = &owners.current {
                    observed.record(&exp, k);
                }
                for k in owners.all() {
                    q.add(k.clone());
                }
                if controller_of(&pod.metadata).is_none() && !deleted {
                    // An orphan: the sets that select it may adopt it.
                    for rs in sets2.store.state() {
                        if rs.metadata.namespace.as_deref() == Some(&ns)
                            && selector(&rs)
                                .is_some_and(|s| !s.is_empty() && s.matches(&labels(pod)))
                        {
                            q.add(key(rs.as_ref()));
                        }
                    }
                }
            });
        }
        Arc::new(ReplicaSetController {
            kind,
            client,
            sets,
            pods,
            queue,
            expectations,
            recorder,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(rs) = self.sets.store.get_in(ns, name) else {
            self.expectations.delete(k);
            return Ok(());
        };
        let Some(sel) = selector(&rs) else {
            return Ok(());
        };
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let candidates = self
            .pods
            .store
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && is_active(p));
        let sets_api = self.sets_api(ns);
        let owned = claim_all(
            candidates,
            &rs.metadata,
            &self.owner_ref(&rs),
            &pods_api,
            |p| !sel.is_empty() && sel.matches(&labels(p)),
            || recheck_owner(&sets_api, &rs.metadata),
        )
        .await?;
        if self.expectations.satisfied(k) && rs.metadata.deletion_timestamp.is_none() {
            self.manage(&rs, &owned, &pods_api).await?;
        }
        let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(after) =
            recheck_availability(owned.iter().map(|p| p.as_ref()), min_ready.unwrap_or(0))
        {
            self.queue.add_after(k.to_string(), after);
        }
        self.update_status(&rs, &owned).await
    }

    async fn manage(
        &self,
        rs: &ReplicaSet,
        owned: &[Arc<Pod>],
        api: &Api<Pod>,
    ) -> Result<(), String> {
        let k = key(rs);
        let want = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        if owned.len() < want {
            let diff = (want - owned.len()).min(BURST_REPLICAS);
            self.expectations.expect(&k, diff as i64, 0);
            // Slow start: batches of 1, 2, 4, ... stop at the first failure.
            let mut remaining = diff;
            let mut batch = SLOW_START_INITIAL_BATCH.min(remaining);
            let mut created = 0;
            while batch > 0 {
                let results =
                    futures::future::join_all((0..batch).map(|_| self.create_pod(rs, api))).await;
                let failed = results.iter().filter(|r| r.is_err()).count();
                created += batch - failed;
                if failed > 0 {
                    // The creations that were skipped or failed will not be observed.
                    let skipped = diff - created;
                    for _ in 0..skipped {
                        self.expectations.creation_observed(&k);
                    }
                    return Err(results
                        .into_iter()
                        .find_map(Result::err)
                        .unwrap_or_default());
                }
                remaining -= batch;
                batch = (batch * 2).min(remaining);
            }
        } else if owned.len() > want {
            let diff = (owned.len() - want).min(BURST_REPLICAS);
            let mut ranked: Vec<&Arc<Pod>> = owned.iter().collect();
            ranked.sort_by(|a, b| deletion_order(a, b));
            self.expectations.expect(&k, 0, diff as i64);
            for p in ranked.into_iter().take(diff) {
                let name = p.metadata.name.clone().unwrap_or_default();
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => self.recorder.eventf(
                        self.reference(rs),
                        "Normal",
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    ),
                    Err(e) => {
                        self.expectations.deletion_observed(&k);
                        self.recorder.eventf(
                            self.reference(rs),
                            "Warning",
                            "FailedDelete",
                            "Delete",
                            format!("Error deleting: {e}"),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    async fn create_pod(&self, rs: &ReplicaSet, api: &Api<Pod>) -> Result<(), String> {
        let template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        let tmeta = template.metadata.unwrap_or_default();
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!(
                    "{}-",
                    rs.metadata.name.as_deref().unwrap_or_default()
                )),
                namespace: rs.metadata.namespace.clone(),
                labels: tmeta.labels,
                annotations: tmeta.annotations,
                finalizers: tmeta.finalizers,
                owner_references: Some(vec![self.owner_ref(rs)]),
                ..Default::default()
            },
            spec: template.spec,
            status: None,
        };
        match api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                self.recorder.eventf(
                    self.reference(rs),
                    "Normal",
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "Created pod: {}",
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.recorder.eventf(
                    self.reference(rs),
                    "Warning",
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {e}"),
                );
                Err(e.to_string())
            }
        }
    }

    async fn update_status(&self, rs: &ReplicaSet, owned: &[Arc<Pod>]) -> Result<(), String> {
        let spec = rs.spec.as_ref();
        let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let template_labels = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let status = ReplicaSetStatus {
            replicas: owned.len() as i32,
            fully_labeled_replicas: Some(
                owned
                    .iter()
                    .filter(|p| {
                        template_labels
                            .iter()
                            .all(|(k, v)| labels(p).get(k) == Some(v))
                    })
                    .count() as i32,
            ),
            ready_replicas: Some(owned.iter().filter(|p| is_ready(p)).count() as i32),
            available_replicas: Some(
                owned.iter().filter(|p| is_available(p, min_ready)).count() as i32
            ),
            observed_generation: rs.metadata.generation,
            conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
            terminating_replicas: rs.status.as_ref().and_then(|s| s.terminating_replicas),
        };
        if rs.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let resource = self.resource();
        let api = self.sets_api(rs.metadata.namespace.as_deref().unwrap_or_default());
        // The cached object (as the managed kind) with the new status, PUT to /status.
        let mut obj =
            DynamicObject::new(rs.metadata.name.as_deref().unwrap_or_default(), &resource)
                .within(rs.metadata.namespace.as_deref().unwrap_or_default());
        obj.metadata = rs.metadata.clone();
        obj.data = serde_json::json!({"status": status});
        crate::controller_utils::update_status(&api, &obj, &serde_json::json!({})).await
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.kind.group.into(),
            version: self.kind.version.into(),
            api_version: self.kind.api_version(),
            kind: self.kind.kind.into(),
            plural: self.kind.plural.into(),
        }
    }

    /// The managed kind's API (ReplicaSets or ReplicationControllers).
    fn sets_api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &self.resource())
    }

    fn owner_ref(&self, rs: &ReplicaSet) -> OwnerReference {
        OwnerReference {
            api_version: self.kind.api_version(),
            kind: self.kind.kind.into(),
            name: rs.metadata.name.clone().unwrap_or_default(),
            uid: rs.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn reference(&self, rs: &ReplicaSet) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.kind.api_version()),
            kind: Some(self.kind.kind.into()),
            ..reference(rs)
        }
    }
}

impl Reconciler for ReplicaSetController {
    type Error = String;

    fn name(&self) -> &str {
        if self.kind.kind == "ReplicaSet" {
            "replicaset"
        } else {
            "replicationcontroller"
        }
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.sets.clone(), self.pods.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        ReplicaSetController::sync(self, key)
            .await
            .map(Action::from)
    }
}

/// A ReplicationController as the ReplicaSet it is equivalent to (its map selector
/// as matchLabels), upstream's conversion for sharing the controller.
pub fn from_replication_controller(
    rc: &k8s_openapi::api::core::v1::ReplicationController,
) -> ReplicaSet {
    let spec = rc.spec.clone().unwrap_or_default();
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: spec.selector,
                match_expressions: None,
            },
            template: spec.template,
        }),
        status: rc.status.as_ref().map(|s| ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: None,
            terminating_replicas: None,
        }),
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, template};
    use serde_json::json;

    /// One sync: creations up to the replicas, deletions down to them, orphans adopted,
    /// and the status it reports.
    #[tokio::test]
    async fn sync_brings_pods_to_replicas() {
        struct Case {
            name: &'static str,
            replicas: i32,
            /// Pods there before the sync: (name, owned by the set).
            pods: &'static [(&'static str, bool)],
            want_pods: usize,
            want_owned: usize,
        }
        let cases = [
            Case {
                name: "creates",
                replicas: 3,
                pods: &[],
                want_pods: 3,
                want_owned: 3,
            },
            Case {
                name: "deletes",
                replicas: 1,
                pods: &[("a", true), ("b", true), ("c", true)],
                want_pods: 1,
                want_owned: 1,
            },
            Case {
                name: "adopts-orphans",
                replicas: 2,
                pods: &[("orphan", false)],
                want_pods: 2,
                want_owned: 2,
            },
            Case {
                name: "steady",
                replicas: 2,
                pods: &[("a", true), ("b", true)],
                want_pods: 2,
                want_owned: 2,
            },
        ];
        for case in cases {
            let env = Env::new(&format!("rs-{}", case.name)).await;
            let (sets, pods) = (env.informer::<ReplicaSet>(), env.informer::<Pod>());
            let c = ReplicaSetController::new(
                &REPLICA_SET,
                env.client.clone(),
                sets.clone(),
                pods.clone(),
                env.recorder("replicaset-controller"),
            );
            env.start().await;
            let rs: ReplicaSet = env
                .create(json!({"metadata": {"name": "web"}, "spec": {
                    "replicas": case.replicas,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": template(json!({"app": "web"}))}}))
                .await;
            let mut existing = Vec::new();
            for (name, owned) in case.pods {
                let mut meta = json!({"name": name, "labels": {"app": "web"}});
                if *owned {
                    meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web", "uid": rs.metadata.uid, "controller": true}]);
                }
                existing.push(
                    env.create::<Pod>(
                        json!({"metadata": meta, "spec": crate::testing::pod_spec()}),
                    )
                    .await,
                );
            }
            env.cached(&sets, &[&rs]).await;
            env.cached(&pods, &existing.iter().collect::<Vec<_>>())
                .await;
            env.sync(c.as_ref(), &env.key("web")).await;

            let live: Vec<Pod> = env
                .list::<Pod>()
                .await
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let owned = live
                .iter()
                .filter(|p| {
                    controller_of(&p.metadata)
                        .is_some_and(|o| Some(&o.uid) == rs.metadata.uid.as_ref())
                })
                .count();
            assert_eq!(live.len(), case.want_pods, "{}: pods", case.name);
            assert_eq!(owned, case.want_owned, "{}: owned pods", case.name);
            let status = env
                .api::<ReplicaSet>()
                .get("web")
                .await
                .unwrap()
                .status
                .unwrap();
            assert_eq!(status.observed_generation, Some(1), "{}", case.name);
        }
    }
}
