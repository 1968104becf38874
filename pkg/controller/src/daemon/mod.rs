//! The DaemonSet controller (upstream `pkg/controller/daemon`): one pod per node the
//! DaemonSet's pods fit (nodeSelector / node affinity, NoSchedule and NoExecute taints
//! they tolerate, counting the tolerations upstream adds to every daemon pod), each pod
//! pinned by required node affinity on `metadata.name`; pods on nodes that no longer fit
//! are deleted; RollingUpdate replaces pods of an old template at most `maxUnavailable`
//! at a time; status counts as upstream.

use crate::controller_utils::{
    Expectations, controller_of, is_available, is_ready, recheck_availability, reference,
};
use crate::deployment::util::template_hash;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::HashMap;
use std::sync::Arc;

pub const REVISION_HASH: &str = "controller-revision-hash";

pub struct DaemonSetController {
    client: kube::Client,
    sets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    revisions: Arc<Informer<ControllerRevision>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
    /// Creations and deletions not yet seen in the pod informer: until they are, a
    /// sync would act on a stale view (a second surge pod, a duplicate daemon pod).
    expectations: Arc<Expectations>,
}

/// The tolerations upstream adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        v.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    v
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or_default();
    let key = t.key.as_deref().unwrap_or_default();
    (effect.is_empty() || effect == taint.effect)
        && (key.is_empty() || key == taint.key)
        && match t.operator.as_deref().unwrap_or("Equal") {
            "Exists" => true,
            _ => {
                t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
            }
        }
}

/// Whether the daemon pod should run on the node.
fn fits(ds: &DaemonSet, node: &Node) -> bool {
    let Some(spec) = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        return false;
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(r) = required {
        let term_ok = |t: &NodeSelectorTerm| {
            t.match_expressions.iter().flatten().all(|e| {
                let v = labels.get(&e.key);
                let values = e.values.clone().unwrap_or_default();
                match e.operator.as_str() {
                    "In" => v.is_some_and(|v| values.contains(v)),
                    "NotIn" => !v.is_some_and(|v| values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
        };
        if !r.node_selector_terms.iter().any(term_ok) {
            return false;
        }
    }
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(daemon_tolerations(spec.host_network.unwrap_or(false)));
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|taint| tolerations.iter().any(|t| tolerates(t, taint)))
}

fn node_of(p: &Pod) -> Option<String> {
    // The pinned node: nodeName once bound, else the required affinity's name.
    if let Some(n) = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
    {
        return Some(n);
    }
    p.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

impl DaemonSetController {
    pub fn new(
        client: kube::Client,
        sets: Arc<Informer<DaemonSet>>,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        revisions: Arc<Informer<ControllerRevision>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("daemonset");
        let q = queue.clone();
        sets.add_handler(move |ds, _| q.add(key(ds)));
        let expectations = Arc::new(Expectations::default());
        let (q, exp) = (queue.clone(), expectations.clone());
        pods.add_event_handler(move |change| {
            let owners = crate::controller_utils::OwnerKeys::of(&change, "DaemonSet");
            if let Some(k) = &owners.current {
                crate::controller_utils::observed(&change).record(&exp, k);
            }
            for k in owners.all() {
                q.add(k.clone());
            }
        });
        let (q, s) = (queue.clone(), sets.clone());
        nodes.add_handler(move |_, _| {
            for ds in s.store.state() {
                q.add(key(ds.as_ref()));
            }
        });
        Arc::new(DaemonSetController {
            client,
            sets,
            pods,
            nodes,
            revisions,
            queue,
            recorder,
            expectations,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(ds) = self.sets.store.get_in(ns, name) else {
            self.expectations.delete(k);
            return Ok(());
        };
        // Until our own writes are observed, wait (their events requeue the set).
        if ds.metadata.deletion_timestamp.is_some() || !self.expectations.satisfied(k) {
            return Ok(());
        }
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let spec = ds.spec.clone().unwrap_or_default();
        let hash = template_hash(
            &spec.template,
            ds.status.as_ref().and_then(|s| s.collision_count),
        );
        // Pods carry the bare hash; revisions are named `<set>-<hash>`.
        let in_use: std::collections::BTreeSet<String> = self
            .pods
            .store
            .state()
            .iter()
            .filter(|p| controller_of(&p.metadata).is_some_and(|o| o.uid == uid))
            .filter_map(|p| {
                p.metadata
                    .labels
                    .as_ref()?
                    .get(REVISION_HASH)
                    .map(|h| format!("{name}-{h}"))
            })
            .collect();
        let owner = crate::history::Owner {
            namespace: ns,
            name,
            owner: ds.controller_owner_ref(&()).unwrap_or_default(),
            template: &spec.template,
            history_limit: spec.revision_history_limit.unwrap_or(10),
        };
        crate::history::ensure_current(&self.client, &self.revisions, &owner, &hash, &in_use)
            .await?;
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.pods.store.state() {
            if p.metadata.namespace.as_deref() == Some(ns)
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
                && p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
                && let Some(n) = node_of(&p)
            {
                by_node.entry(n).or_default().push(p);
            }
        }
        let nodes = self.nodes.store.state();
        let mut desired = 0;
        let (mut scheduled, mut misscheduled, mut ready, mut available, mut updated) =
            (0, 0, 0, 0, 0);
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let recheck =
            recheck_availability(by_node.values().flatten().map(|p| p.as_ref()), min_ready);
        let max_unavailable = match spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.max_unavailable.clone())
        {
            Some(IntOrString::Int(n)) => n.max(0),
            Some(IntOrString::String(p)) => {
                let pct: f64 = p.trim_end_matches('%').parse().unwrap_or(0.0);
                (pct * nodes.len() as f64 / 100.0).ceil() as i32
            }
            None => 1,
        };
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let mut old_pods: Vec<Arc<Pod>> = Vec::new();
        let mut unavailable = 0;
        // maxSurge (rounded up, of the eligible nodes): a new pod starts next to the old
        // one on up to that many nodes at a time.
        let eligible = nodes.iter().filter(|n| fits(&ds, n)).count() as i32;
        let max_surge = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref())
            .map(|v| crate::controller_utils::scaled_value(v, eligible, true))
            .unwrap_or(0);
        let surge = rolling && max_surge > 0;
        let mut surging = 0;
        let mut surge_candidates: Vec<String> = Vec::new();
        for node in &nodes {
            let node_name = node.metadata.name.clone().unwrap_or_default();
            let should = fits(&ds, node);
            let pods = by_node.remove(&node_name).unwrap_or_default();
            if should {
                desired += 1;
                if pods.is_empty() {
                    self.create_pod(k, &ds, &node_name, &hash, &pods_api)
                        .await?;
                    unavailable += 1;
                    continue;
                }
                scheduled += 1;
                // Per node: the newest-revision pod and the old one (extras beyond the
                // oldest of each go).
                let mut pods = pods;
                pods.sort_by(|a, b| {
                    a.metadata
                        .creation_timestamp
                        .cmp(&b.metadata.creation_timestamp)
                });
                let is_current = |p: &Arc<Pod>| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(REVISION_HASH))
                        == Some(&hash)
                };
                let (new, old): (Vec<Arc<Pod>>, Vec<Arc<Pod>>) =
                    pods.into_iter().partition(|p| is_current(p));
                let keep_old = if surge && !new.is_empty() {
                    1
                } else {
                    usize::from(new.is_empty())
                };
                for extra in new.iter().skip(1).chain(old.iter().skip(keep_old)) {
                    self.delete_pod(k, &pods_api, extra).await;
                }
                let p = match (new.first(), old.first()) {
                    // Surge: the old pod goes once the new one is available.
                    (Some(n), Some(o)) if surge => {
                        if is_available(n, min_ready) {
                            self.delete_pod(k, &pods_api, o).await;
                        } else {
                            surging += 1;
                        }
                        n.clone()
                    }
                    (Some(n), _) => n.clone(),
                    (None, Some(o)) => {
                        if surge {
                            if is_available(o, min_ready) {
                                surge_candidates.push(node_name.clone());
                            } else {
                                // An unavailable old pod is replaced at once.
                                self.create_pod(k, &ds, &node_name, &hash, &pods_api)
                                    .await?;
                            }
                        } else {
                            old_pods.push(o.clone());
                        }
                        o.clone()
                    }
                    (None, None) => continue,
                };
                if is_current(&p) {
                    updated += 1;
                }
                if is_ready(&p) {
                    ready += 1;
                }
                if is_available(&p, min_ready) {
                    available += 1;
                } else {
                    unavailable += 1;
                }
            } else if !pods.is_empty() {
                misscheduled += 1;
                for p in pods {
                    self.delete_pod(k, &pods_api, &p).await;
                    self.recorder.eventf(
                        reference(ds.as_ref()),
                        "Normal",
                        "SuccessfulDelete",
                        "Delete",
                        format!(
                            "Deleted pod: {}",
                            p.metadata.name.as_deref().unwrap_or_default()
                        ),
                    );
                }
            }
        }
        // Pods pinned to nodes that no longer exist.
        for p in by_node.into_values().flatten() {
            self.delete_pod(k, &pods_api, &p).await;
        }
        if surge {
            let budget = (max_surge - surging).max(0) as usize;
            for node_name in surge_candidates.into_iter().take(budget) {
                self.create_pod(k, &ds, &node_name, &hash, &pods_api)
                    .await?;
            }
        }
        // RollingUpdate: old pods go (unavailable ones first) within maxUnavailable; the
        // next sync creates their replacements.
        if rolling && !old_pods.is_empty() {
            old_pods.sort_by_key(|p| is_available(p, min_ready));
            let mut budget = (max_unavailable - unavailable).max(0);
            for p in old_pods {
                if is_available(&p, min_ready) {
                    if budget == 0 {
                        break;
                    }
                    budget -= 1;
                }
                self.delete_pod(k, &pods_api, &p).await;
            }
        }
        if let Some(after) = recheck {
            self.queue.add_after(k.to_string(), after);
        }
        let status = DaemonSetStatus {
            current_number_scheduled: scheduled,
            desired_number_scheduled: desired,
            number_misscheduled: misscheduled,
            number_ready: ready,
            number_available: Some(available),
            number_unavailable: Some((desired - available).max(0)),
            updated_number_scheduled: Some(updated),
            observed_generation: ds.metadata.generation,
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if ds.status.as_ref() != Some(&status) {
            let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
            crate::controller_utils::update_status(
                &api,
                ds.as_ref(),
                &serde_json::json!({"status": status}),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes a pod, expecting to observe it (a pod already gone is not waited for).
    async fn delete_pod(&self, k: &str, api: &Api<Pod>, p: &Pod) {
        self.expectations.raise(k, 0, 1);
        if api
            .delete(
                p.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await
            .is_err()
        {
            self.expectations.deletion_observed(k);
        }
    }

    async fn create_pod(
        &self,
        k: &str,
        ds: &DaemonSet,
        node: &str,
        hash: &str,
        api: &Api<Pod>,
    ) -> Result<(), String> {
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let tm = template.metadata.unwrap_or_default();
        let mut labels = tm.labels.unwrap_or_default();
        labels.insert(REVISION_HASH.into(), hash.into());
        let mut spec = template.spec.unwrap_or_default();
        // Pinned to the node by required affinity (the scheduler binds it there).
        let pin = NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            ..Default::default()
        };
        let affinity = spec.affinity.get_or_insert_with(Affinity::default);
        affinity.node_affinity = Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![pin],
            }),
            ..affinity.node_affinity.clone().unwrap_or_default()
        });
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        for t in daemon_tolerations(spec.host_network.unwrap_or(false)) {
            if !tolerations.contains(&t) {
                tolerations.push(t);
            }
        }
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!(
                    "{}-",
                    ds.metadata.name.as_deref().unwrap_or_default()
                )),
                namespace: ds.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: tm.annotations,
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "DaemonSet".into(),
                    name: ds.metadata.name.clone().unwrap_or_default(),
                    uid: ds.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        self.expectations.raise(k, 1, 0);
        match api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                self.recorder.eventf(
                    reference(ds),
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
                self.expectations.creation_observed(k);
                self.recorder.eventf(
                    reference(ds),
                    "Warning",
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {e}"),
                );
                Err(e.to_string())
            }
        }
    }
}

impl Reconciler for DaemonSetController {
    type Error = String;

    fn name(&self) -> &str {
        "daemonset"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.sets.clone(),
            self.revisions.clone(),
            self.pods.clone(),
            self.nodes.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        DaemonSetController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, template};
    use serde_json::json;

    /// One sync: a daemon pod pinned to each node the selector and taints admit.
    #[tokio::test]
    async fn sync_places_a_pod_per_fitting_node() {
        // (case, node labels match the selector, node taint effect)
        let cases = [
            ("fits", true, None, 1),
            ("selector-misses", false, None, 0),
            ("tainted", true, Some("NoSchedule"), 0),
        ];
        for (name, labelled, taint, want) in cases {
            let env = Env::new(&format!("ds-{name}")).await;
            let (sets, pods, nodes, revisions) = (
                env.informer::<DaemonSet>(),
                env.informer::<Pod>(),
                env.cluster_informer::<Node>(),
                env.informer::<ControllerRevision>(),
            );
            let c = DaemonSetController::new(
                env.client.clone(),
                sets.clone(),
                pods.clone(),
                nodes.clone(),
                revisions.clone(),
                env.recorder("daemonset-controller"),
            );
            env.start().await;
            let node_name = format!("{}-node", env.ns);
            let mut node = json!({"metadata": {"name": node_name, "labels": {}}});
            if labelled {
                node["metadata"]["labels"]["ds-test"] = json!(env.ns);
            }
            env.create_cluster::<Node>(node).await;
            // Admission taints a new node not-ready (TaintNodesByCondition) until the
            // node lifecycle controller sees it Ready; the test sets the taints itself.
            let taints = match taint {
                Some(effect) => json!([{"key": "dedicated", "effect": effect}]),
                None => json!([]),
            };
            let node = env
                .cluster_api::<Node>()
                .patch(
                    &node_name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(json!({"spec": {"taints": taints}})),
                )
                .await
                .unwrap();
            let mut tmpl = template(json!({"app": "agent"}));
            tmpl["spec"]["nodeSelector"] = json!({"ds-test": env.ns});
            let ds: DaemonSet = env
                .create(json!({"metadata": {"name": "agent"}, "spec": {
                    "selector": {"matchLabels": {"app": "agent"}}, "template": tmpl}}))
                .await;
            env.cached(&sets, &[&ds]).await;
            env.cached(&nodes, &[&node]).await;
            pods.synced().await;
            revisions.synced().await;
            env.sync(c.as_ref(), &env.key("agent")).await;

            let pods = env.list::<Pod>().await;
            assert_eq!(pods.len(), want, "{name}: pods");
            for p in &pods {
                let pinned = serde_json::to_value(&p.spec.as_ref().unwrap().affinity).unwrap();
                assert!(pinned.to_string().contains(&node_name), "{name}: {pinned}");
            }
            env.cluster_api::<Node>()
                .delete(&node_name, &Default::default())
                .await
                .unwrap();
        }
    }
}
