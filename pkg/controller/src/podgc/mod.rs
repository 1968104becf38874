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
