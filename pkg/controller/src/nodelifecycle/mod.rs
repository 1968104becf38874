//! Node lifecycle (upstream `pkg/controller/nodelifecycle` and `tainteviction`): every
//! `--node-monitor-period` each node's last heartbeat (its Ready condition or its Lease in
//! `kube-node-lease`) is checked; past `--node-monitor-grace-period` its conditions become
//! Unknown ("Kubelet stopped posting node status.") and its pods not ready. Ready=False /
//! Unknown nodes get the `not-ready` / `unreachable` NoExecute and NoSchedule taints (and
//! the pressure conditions their NoSchedule taints); pods that do not tolerate a
//! NoExecute taint are evicted at once, or after their `tolerationSeconds`
//! (`TaintManagerEviction`).

use crate::informer::Informer;
use client_go::events::Recorder;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// NoSchedule taints from conditions (upstream `nodeConditionToTaintKeyStatusMap`).
const CONDITION_TAINTS: [(&str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
];

pub struct NodeLifecycle {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    recorder: Arc<Recorder>,
    monitor_period: Duration,
    grace_period: Duration,
}

fn ready_status(n: &Node) -> Option<&str> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
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

impl NodeLifecycle {
    pub fn new(
        client: kube::Client,
        nodes: Arc<Informer<Node>>,
        leases: Arc<Informer<Lease>>,
        pods: Arc<Informer<Pod>>,
        recorder: Arc<Recorder>,
        monitor_period: Duration,
        grace_period: Duration,
    ) -> Arc<Self> {
        Arc::new(NodeLifecycle {
            client,
            nodes,
            leases,
            pods,
            recorder,
            monitor_period,
            grace_period,
        })
    }

    pub async fn run(self: Arc<Self>) {
        self.nodes.synced().await;
        self.leases.synced().await;
        self.pods.synced().await;
        // Nodes seen at start get a full grace period before being judged.
        let started = Timestamp::now();
        loop {
            for node in self.nodes.store.state() {
                if let Err(e) = self.monitor(&node, started).await {
                    tracing::warn!(node = node.metadata.name.as_deref().unwrap_or_default(), error = %e, "monitoring node");
                }
            }
            self.evict().await;
            tokio::time::sleep(self.monitor_period).await;
        }
    }

    fn last_heartbeat(&self, node: &Node) -> Option<Timestamp> {
        let name = node.metadata.name.as_deref()?;
        let from_condition = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0));
        let from_lease = self
            .leases
            .store
            .get_in("kube-node-lease", name)
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        from_condition.max(from_lease)
    }

    async fn monitor(&self, node: &Node, started: Timestamp) -> Result<(), String> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now();
        let heartbeat = self.last_heartbeat(node).unwrap_or(started).max(started);
        let stale = now.duration_since(heartbeat).as_secs_f64() > self.grace_period.as_secs_f64();
        let api: Api<Node> = Api::all(self.client.clone());
        if stale && ready_status(node) != Some("Unknown") {
            let mut conditions: Vec<NodeCondition> = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
                let reason = "NodeStatusUnknown".to_string();
                let message = "Kubelet stopped posting node status.".to_string();
                match conditions.iter_mut().find(|c| c.type_ == t) {
                    Some(c) => {
                        if c.status != "Unknown" {
                            c.last_transition_time = Some(Time(now));
                        }
                        c.status = "Unknown".into();
                        c.reason = Some(reason);
                        c.message = Some(message);
                    }
                    None => conditions.push(NodeCondition {
                        type_: t.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_transition_time: Some(Time(now)),
                        last_heartbeat_time: Some(Time(heartbeat)),
                    }),
                }
            }
            let patch = serde_json::json!({"status": {"conditions": conditions}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .map_err(|e| e.to_string())?;
            self.recorder.eventf(
                ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(name.clone()),
                    uid: Some(name.clone()),
                    ..Default::default()
                },
                "Normal",
                "NodeNotReady",
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            self.mark_pods_not_ready(&name).await;
            return Ok(());
        }
        self.reconcile_taints(node, &api).await
    }

    /// The taints the node's conditions call for, kept (with their time) when present.
    async fn reconcile_taints(&self, node: &Node, api: &Api<Node>) -> Result<(), String> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let managed = |t: &Taint| {
            t.key == NOT_READY
                || t.key == UNREACHABLE
                || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key)
        };
        let mut want: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
        let keep_or_new = |key: &str, effect: &str| {
            current
                .iter()
                .find(|t| t.key == key && t.effect == effect)
                .cloned()
                .unwrap_or(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    value: None,
                    time_added: (effect == "NoExecute").then(|| Time(Timestamp::now())),
                })
        };
        match ready_status(node) {
            Some("False") => {
                want.push(keep_or_new(NOT_READY, "NoSchedule"));
                want.push(keep_or_new(NOT_READY, "NoExecute"));
            }
            Some("Unknown") => {
                want.push(keep_or_new(UNREACHABLE, "NoSchedule"));
                want.push(keep_or_new(UNREACHABLE, "NoExecute"));
            }
            _ => {}
        }
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for (ctype, status, key) in CONDITION_TAINTS {
            if conditions
                .iter()
                .any(|c| c.type_ == ctype && c.status == status)
            {
                want.push(keep_or_new(key, "NoSchedule"));
            }
        }
        let norm = |v: &[Taint]| {
            let mut v: Vec<(String, String)> = v
                .iter()
                .map(|t| (t.key.clone(), t.effect.clone()))
                .collect();
            v.sort();
            v
        };
        if norm(&want) == norm(&current) {
            return Ok(());
        }
        let patch = serde_json::json!({"spec": {"taints": want}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn mark_pods_not_ready(&self, node: &str) {
        for p in self.pods.store.state() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
                continue;
            }
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                p.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let patch = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False",
                "lastTransitionTime": Timestamp::now().to_string()}]}});
            let _ = api
                .patch_status(
                    p.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await;
        }
    }

    /// Pods on NoExecute-tainted nodes that do not tolerate the taints (or whose
    /// tolerationSeconds ran out since the taint was added) are deleted.
    async fn evict(&self) {
        let nodes: HashMap<String, Vec<Taint>> = self
            .nodes
            .store
            .state()
            .into_iter()
            .map(|n| {
                let taints = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default();
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    taints
                        .into_iter()
                        .filter(|t| t.effect == "NoExecute")
                        .collect(),
                )
            })
            .collect();
        let now = Timestamp::now();
        for p in self.pods.store.state() {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(taints) = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .and_then(|n| nodes.get(n))
            else {
                continue;
            };
            let tolerations = p
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.clone())
                .unwrap_or_default();
            let due =
                taints.iter().any(
                    |taint| match tolerations.iter().find(|t| tolerates(t, taint)) {
                        None => true,
                        Some(t) => match t.toleration_seconds {
                            None => false,
                            Some(secs) => {
                                let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
                                now.duration_since(added).as_secs() >= secs.max(0)
                            }
                        },
                    },
                );
            if !due {
                continue;
            }
            let (ns, name) = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let condition = serde_json::json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": now.to_string()}]}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
                .await;
            if api.delete(&name, &DeleteParams::default()).await.is_ok() {
                self.recorder.eventf(
                    ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        namespace: Some(ns.clone()),
                        name: Some(name.clone()),
                        uid: p.metadata.uid.clone(),
                        ..Default::default()
                    },
                    "Normal",
                    "TaintManagerEviction",
                    "Deleting",
                    format!("Marking for deletion Pod {ns}/{name}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use serde_json::json;

    /// One monitoring pass over a node: taints from its Ready and pressure conditions,
    /// and a node whose heartbeat is older than the grace period turned Unknown with
    /// its pods no longer ready.
    #[tokio::test]
    async fn monitor_taints_and_times_out_nodes() {
        /// (case, Ready status, heartbeat seconds ago, extra condition, want Ready
        /// after, want taints)
        type Case<'a> = (
            &'a str,
            &'a str,
            i64,
            Option<&'a str>,
            &'a str,
            &'a [(&'a str, &'a str)],
        );
        let cases: [Case; 5] = [
            ("ready", "True", 0, None, "True", &[]),
            (
                "not-ready",
                "False",
                0,
                None,
                "False",
                &[(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")],
            ),
            (
                "unknown",
                "Unknown",
                0,
                None,
                "Unknown",
                &[(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")],
            ),
            (
                "memory-pressure",
                "True",
                0,
                Some("MemoryPressure"),
                "True",
                &[("node.kubernetes.io/memory-pressure", "NoSchedule")],
            ),
            ("stale", "True", 300, None, "Unknown", &[]),
        ];
        for (name, ready, ago, pressure, want_ready, want_taints) in cases {
            let env = Env::new(&format!("nodelc-{name}")).await;
            let (nodes, leases, pods) = (
                env.cluster_informer::<Node>(),
                env.informers.namespaced::<Lease>("kube-node-lease"),
                env.informer::<Pod>(),
            );
            let c = NodeLifecycle::new(
                env.client.clone(),
                nodes.clone(),
                leases.clone(),
                pods.clone(),
                env.recorder("node-controller"),
                Duration::from_secs(5),
                Duration::from_secs(40),
            );
            env.start().await;
            let node_name = format!("{}-node", env.ns);
            env.create_cluster::<Node>(json!({"metadata": {"name": node_name}}))
                .await;
            let beat = (Timestamp::now() - jiff::SignedDuration::from_secs(ago)).to_string();
            let mut conditions = vec![
                json!({"type": "Ready", "status": ready, "lastHeartbeatTime": beat, "lastTransitionTime": beat}),
            ];
            if let Some(p) = pressure {
                conditions.push(json!({"type": p, "status": "True", "lastHeartbeatTime": beat, "lastTransitionTime": beat}));
            }
            let api: Api<Node> = Api::all(env.client.clone());
            let node = api
                .patch_status(
                    &node_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"conditions": conditions}})),
                )
                .await
                .unwrap();
            let mut spec = pod_spec();
            spec["nodeName"] = json!(node_name);
            let pod: Pod = env
                .create(json!({"metadata": {"name": "on-node"}, "spec": spec}))
                .await;
            env.api::<Pod>()
                .patch_status(
                    "on-node",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {
                    "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})),
                )
                .await
                .unwrap();
            env.cached(&nodes, &[&node]).await;
            env.cached(&pods, &[&pod]).await;
            leases.synced().await;
            let started = Timestamp::now() - jiff::SignedDuration::from_secs(3600);
            c.monitor(&node, started).await.unwrap();

            let got = api.get(&node_name).await.unwrap();
            assert_eq!(ready_status(&got), Some(want_ready), "{name}");
            let mut taints: Vec<(String, String)> = got
                .spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.effect))
                .collect();
            taints.sort();
            let want: Vec<(String, String)> = want_taints
                .iter()
                .map(|(k, e)| (k.to_string(), e.to_string()))
                .collect();
            // The timed-out node's taints come on the next pass; admission's initial
            // not-ready taint is still there.
            if name != "stale" {
                assert_eq!(taints, want, "{name}");
            }
            let pod_ready = env
                .api::<Pod>()
                .get("on-node")
                .await
                .unwrap()
                .status
                .unwrap()
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status);
            assert_eq!(
                pod_ready.as_deref(),
                Some(if name == "stale" { "False" } else { "True" }),
                "{name}: pod"
            );
            api.delete(&node_name, &Default::default()).await.unwrap();
        }
    }
}
