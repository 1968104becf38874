//! The pod garbage collector (upstream `pkg/controller/podgc`), every 20 s: terminated
//! pods beyond `--terminated-pod-gc-threshold` (oldest first), pods bound to nodes that
//! no longer exist, and terminating pods never scheduled are deleted (orphaned ones
//! first marked Failed with a DisruptionTarget condition, as upstream).

use crate::informer::Informer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub struct PodGc {
    client: kube::Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    threshold: usize,
    period: Duration,
}

fn terminated(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl PodGc {
    pub fn new(
        client: kube::Client,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        threshold: usize,
        period: Duration,
    ) -> Arc<Self> {
        Arc::new(PodGc {
            client,
            pods,
            nodes,
            threshold,
            period,
        })
    }

    pub async fn run(self: Arc<Self>) {
        self.pods.synced().await;
        self.nodes.synced().await;
        loop {
            self.collect().await;
            tokio::time::sleep(self.period).await;
        }
    }

    async fn delete(&self, p: &Pod, orphaned: bool) {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            p.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = p.metadata.name.as_deref().unwrap_or_default();
        if orphaned && !terminated(p) {
            let patch = serde_json::json!({"status": {"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists",
                "lastTransitionTime": jiff::Timestamp::now().to_string()}]}});
            let _ = api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await;
        }
        let _ = api
            .delete(
                name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await;
    }

    async fn collect(&self) {
        let pods = self.pods.store.state();
        let nodes: HashSet<String> = self
            .nodes
            .store
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        // Terminated pods over the threshold, oldest first.
        if self.threshold > 0 {
            let mut done: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| terminated(p) && p.metadata.deletion_timestamp.is_none())
                .collect();
            if done.len() > self.threshold {
                done.sort_by(|a, b| {
                    a.metadata
                        .creation_timestamp
                        .cmp(&b.metadata.creation_timestamp)
                });
                let n = done.len() - self.threshold;
                for p in done.into_iter().take(n) {
                    self.delete(p, false).await;
                }
            }
        }
        for p in &pods {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty());
            match node {
                // Bound to a node that is gone.
                Some(n) if !nodes.contains(n) => self.delete(p, true).await,
                // Terminating without ever being scheduled.
                None if p.metadata.deletion_timestamp.is_some() => self.delete(p, false).await,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use serde_json::json;

    /// One collection: pods bound to a node that is gone are failed and deleted, pods
    /// on a live node stay, and terminated pods beyond the threshold go oldest first.
    #[tokio::test]
    async fn collect_removes_orphaned_and_excess_terminated_pods() {
        let env = Env::new("podgc").await;
        let (pods, nodes) = (env.informer::<Pod>(), env.cluster_informer::<Node>());
        let gc = PodGc::new(
            env.client.clone(),
            pods.clone(),
            nodes.clone(),
            1,
            Duration::from_secs(20),
        );
        env.start().await;
        let live_node = format!("{}-node", env.ns);
        let node: Node = env
            .create_cluster(json!({"metadata": {"name": live_node}}))
            .await;
        let on = |name: &str, node: &str| {
            let mut spec = pod_spec();
            spec["nodeName"] = json!(node);
            json!({"metadata": {"name": name}, "spec": spec})
        };
        // (pod, node, terminated, want kept)
        let cases = [
            ("orphaned", "no-such-node", false, false),
            ("running", live_node.as_str(), false, true),
            ("done-old", live_node.as_str(), true, false),
            ("done-new", live_node.as_str(), true, true),
        ];
        let mut created = Vec::new();
        for (name, node, terminated, _) in &cases {
            let mut p: Pod = env.create(on(name, node)).await;
            if *terminated {
                p = env
                    .api::<Pod>()
                    .patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
                    )
                    .await
                    .unwrap();
                // Creation times have a one-second resolution: keep "old" older.
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            created.push(p);
        }
        env.cached(&pods, &created.iter().collect::<Vec<_>>()).await;
        env.cached(&nodes, &[&node]).await;
        gc.collect().await;

        for (name, _, _, want_kept) in cases {
            let kept = env.api::<Pod>().get_opt(name).await.unwrap().is_some();
            assert_eq!(kept, want_kept, "{name}");
        }
        env.cluster_api::<Node>()
            .delete(&live_node, &Default::default())
            .await
            .unwrap();
    }
}
