//! The TTL controller (upstream `pkg/controller/ttl`): every node is annotated with
//! `node.alpha.kubernetes.io/ttl`, how long kubelets may cache Secrets and ConfigMaps,
//! chosen by cluster size with hysteresis (0 s up to 100 nodes ... 600 s past 9000).

use crate::informer::Informer;
use crate::workqueue::Queue;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use std::sync::{Arc, Mutex};

pub const TTL_ANNOTATION: &str = "node.alpha.kubernetes.io/ttl";

/// Upstream's boundaries: (size min, size max, ttl seconds); the ranges overlap so the
/// ttl does not flap around a boundary.
const BOUNDARIES: &[(usize, usize, i64)] = &[
    (0, 100, 0),
    (90, 500, 15),
    (450, 1000, 30),
    (900, 2000, 60),
    (1800, 10000, 300),
    (9000, usize::MAX, 600),
];

pub struct TtlController {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    queue: Arc<Queue>,
    /// Index into BOUNDARIES for the current cluster size.
    step: Mutex<usize>,
}

impl TtlController {
    pub fn new(client: kube::Client, nodes: Arc<Informer<Node>>) -> Arc<Self> {
        let queue = Queue::named("ttlcontroller");
        let q = queue.clone();
        // Any change may move the size across a boundary.
        nodes.add_handler(move |n, _| q.add(n.metadata.name.clone().unwrap_or_default()));
        Arc::new(TtlController {
            client,
            nodes,
            queue,
            step: Mutex::new(0),
        })
    }

    /// The ttl for `size` nodes, leaving the current step only past its range.
    fn ttl_for(&self, size: usize) -> i64 {
        let mut step = self.step.lock().unwrap();
        while size > BOUNDARIES[*step].1 && *step + 1 < BOUNDARIES.len() {
            *step += 1;
        }
        while size < BOUNDARIES[*step].0 && *step > 0 {
            *step -= 1;
        }
        BOUNDARIES[*step].2
    }

    pub async fn run(self: Arc<Self>) {
        self.nodes.synced().await;
        let mut last_ttl = None;
        while let Some(name) = self.queue.get().await {
            let nodes = self.nodes.store.state();
            let ttl = self.ttl_for(nodes.len());
            if last_ttl.is_some_and(|t| t != ttl) {
                // The ttl moved: every node needs the new value.
                for n in &nodes {
                    self.queue.add(n.metadata.name.clone().unwrap_or_default());
                }
            }
            last_ttl = Some(ttl);
            let current = nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(&name))
                .map(|n| {
                    n.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(TTL_ANNOTATION))
                        .cloned()
                });
            if let Some(current) = current
                && current != Some(ttl.to_string())
            {
                let api: Api<Node> = Api::all(self.client.clone());
                let patch = serde_json::json!({"metadata": {"annotations": {TTL_ANNOTATION: ttl.to_string()}}});
                if let Err(e) = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    tracing::warn!(node = name, error = %e, "setting the node ttl; retrying");
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_overlap_for_hysteresis() {
        for w in BOUNDARIES.windows(2) {
            assert!(w[1].0 < w[0].1, "{w:?}");
        }
    }
}
