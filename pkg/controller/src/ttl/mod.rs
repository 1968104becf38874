//! The TTL controller (upstream `pkg/controller/ttl`): every node is annotated with
//! `node.alpha.kubernetes.io/ttl`, how long kubelets may cache Secrets and ConfigMaps,
//! chosen by cluster size with hysteresis (0 s up to 100 nodes ... 600 s past 9000).

use crate::informer::Informer;
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
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
    /// The ttl the last sync set.
    last_ttl: Mutex<Option<i64>>,
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
            last_ttl: Mutex::default(),
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
}

impl Reconciler for TtlController {
    type Error = kube::Error;

    fn name(&self) -> &str {
        "ttl"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.nodes.clone()]
    }

    async fn sync(&self, name: &str) -> Result<Action, kube::Error> {
        let ttl = self.ttl_for(self.nodes.store.len());
        let moved = self
            .last_ttl
            .lock()
            .unwrap()
            .replace(ttl)
            .is_some_and(|t| t != ttl);
        if moved {
            // The ttl moved: every node needs the new value.
            for n in self.nodes.store.state() {
                self.queue.add(n.metadata.name.clone().unwrap_or_default());
            }
        }
        let Some(node) = self.nodes.store.get(name) else {
            return Ok(Action::AwaitChange);
        };
        let current = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TTL_ANNOTATION));
        if current != Some(&ttl.to_string()) {
            let api: Api<Node> = Api::all(self.client.clone());
            let patch =
                serde_json::json!({"metadata": {"annotations": {TTL_ANNOTATION: ttl.to_string()}}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        Ok(Action::AwaitChange)
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

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a node: annotated with the TTL of a small cluster (0 s), whatever it
    /// carried before.
    #[tokio::test]
    async fn sync_annotates_the_ttl() {
        for (name, existing) in [
            ("unannotated", None),
            ("stale", Some("300")),
            ("current", Some("0")),
        ] {
            let env = Env::new(&format!("ttl-node-{name}")).await;
            let nodes = env.cluster_informer::<Node>();
            let c = TtlController::new(env.client.clone(), nodes.clone());
            env.start().await;
            let node_name = format!("{}-node", env.ns);
            let mut meta = json!({"name": node_name});
            if let Some(ttl) = existing {
                meta["annotations"] = json!({TTL_ANNOTATION: ttl});
            }
            let node: Node = env.create_cluster(json!({"metadata": meta})).await;
            env.cached(&nodes, &[&node]).await;
            env.sync(c.as_ref(), &node_name).await;

            let got = env.cluster_api::<Node>().get(&node_name).await.unwrap();
            let ttl = got
                .metadata
                .annotations
                .unwrap_or_default()
                .get(TTL_ANNOTATION)
                .cloned();
            assert_eq!(ttl.as_deref(), Some("0"), "{name}");
            env.cluster_api::<Node>()
                .delete(&node_name, &Default::default())
                .await
                .unwrap();
        }
    }
}
