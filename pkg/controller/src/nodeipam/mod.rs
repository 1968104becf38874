//! The node IPAM controller with the range allocator (upstream
//! `pkg/controller/nodeipam/ipam/range_allocator.go` and `cidrset`): with
//! `--allocate-node-cidrs`, every node gets `spec.podCIDR(s)` — one subnet of
//! `--node-cidr-mask-size` per family out of `--cluster-cidr` — taken round-robin after
//! the last one given; CIDRs nodes already have are marked used at start, a deleted
//! node's CIDRs are released, and a full range is reported as `CIDRNotAvailable`.

pub mod cidrset;

use crate::controller_utils::reference;
use crate::informer::Informer;
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use cidrset::CidrSet;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct NodeIpamController {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
    state: Mutex<Allocations>,
}

/// One set per family of `--cluster-cidr`, and what each node holds.
struct Allocations {
    sets: Vec<CidrSet>,
    by_node: HashMap<String, Vec<String>>,
}

impl Allocations {
    /// Marks `cidrs` used (each in the set of its family) as `node`'s.
    fn hold(&mut self, node: &str, cidrs: Vec<String>) {
        if cidrs.is_empty() {
            return;
        }
        for c in &cidrs {
            for set in self.sets.iter_mut() {
                let _ = set.occupy(c);
            }
        }
        self.by_node.insert(node.to_string(), cidrs);
    }

    /// Returns what `node` holds to the pool.
    fn release(&mut self, node: &str) {
        for c in self.by_node.remove(node).unwrap_or_default() {
            for set in self.sets.iter_mut() {
                let _ = set.release(&c);
            }
        }
    }

    /// One subnet of every family for `node`, or none at all when a family is full. A
    /// node already given subnets (its patch written, the informer not caught up yet)
    /// gets the same ones again, so a quick second sync neither leaks nor moves them.
    fn allocate(&mut self, node: &str) -> Vec<String> {
        if let Some(held) = self.by_node.get(node).filter(|h| !h.is_empty()) {
            return held.clone();
        }
        let mut got = Vec::new();
        for set in self.sets.iter_mut() {
            match set.allocate_next() {
                Some(c) => got.push(c),
                None => break,
            }
        }
        if got.len() < self.sets.len() {
            // Give back what the other families gave.
            for (c, set) in got.iter().zip(self.sets.iter_mut()) {
                let _ = set.release(c);
            }
            return Vec::new();
        }
        self.by_node.insert(node.to_string(), got.clone());
        got
    }
}

fn pod_cidrs(n: &Node) -> Vec<String> {
    let spec = n.spec.clone().unwrap_or_default();
    match spec.pod_cidrs {
        Some(c) if !c.is_empty() => c,
        _ => spec.pod_cidr.into_iter().collect(),
    }
}

impl NodeIpamController {
    pub fn new(
        client: kube::Client,
        nodes: Arc<Informer<Node>>,
        sets: Vec<CidrSet>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("node");
        let q = queue.clone();
        nodes.add_handler(move |n, _| q.add(n.metadata.name.clone().unwrap_or_default()));
        Arc::new(NodeIpamController {
            client,
            nodes,
            queue,
            recorder,
            state: Mutex::new(Allocations {
                sets,
                by_node: HashMap::new(),
            }),
        })
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let node = self.nodes.store.get(name);
        let Some(node) = node else {
            // Gone: its CIDRs go back to the pool.
            self.state.lock().unwrap().release(name);
            return Ok(());
        };
        let existing = pod_cidrs(&node);
        if !existing.is_empty() {
            self.state.lock().unwrap().hold(name, existing);
            return Ok(());
        }
        let allocated = self.state.lock().unwrap().allocate(name);
        if allocated.is_empty() {
            self.recorder.eventf(
                reference(node.as_ref()),
                "Normal",
                "CIDRNotAvailable",
                "CIDRAssignmentFailed",
                format!("Node {name} status is now: CIDRNotAvailable"),
            );
            return Err("failed to allocate cidr from cluster cidr: cidr set is full".into());
        }
        let patch = serde_json::json!({"spec": {"podCIDR": allocated[0], "podCIDRs": allocated}});
        let api: Api<Node> = Api::all(self.client.clone());
        if let Err(e) = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            self.state.lock().unwrap().release(name);
            return Err(format!("failed to patch node CIDR: {e}"));
        }
        tracing::info!(node = name, pod_cidrs = ?allocated, "set node PodCIDR");
        Ok(())
    }
}

impl Reconciler for NodeIpamController {
    type Error = String;

    fn name(&self) -> &str {
        "nodeipam"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.nodes.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        NodeIpamController::sync(self, key).await.map(Action::from)
    }

    /// What nodes hold already is taken before anything is given out.
    fn on_synced(self: &Arc<Self>) {
        let mut st = self.state.lock().unwrap();
        for n in self.nodes.store.state() {
            st.hold(
                n.metadata.name.as_deref().unwrap_or_default(),
                pod_cidrs(&n),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_allocated_again_keeps_its_subnet() {
        let mut a = Allocations {
            sets: vec![CidrSet::new("10.244.0.0/16", 24).unwrap()],
            by_node: HashMap::new(),
        };
        // A node seen without subnets at start holds nothing.
        a.hold("m1", Vec::new());
        assert_eq!(a.allocate("m1"), vec!["10.244.0.0/24".to_string()]);
        // A second sync before the informer saw the patch: the same subnet, none leaked.
        assert_eq!(a.allocate("m1"), vec!["10.244.0.0/24".to_string()]);
        assert_eq!(a.allocate("m2"), vec!["10.244.1.0/24".to_string()]);
        a.release("m1");
        assert_eq!(a.allocate("m3"), vec!["10.244.2.0/24".to_string()]);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a node: a free /24 of the cluster CIDR as its podCIDR, or the one it
    /// has kept.
    #[tokio::test]
    async fn sync_allocates_pod_cidrs() {
        for (name, existing) in [("new", None), ("has-one", Some("10.250.7.0/24"))] {
            let env = Env::new(&format!("ipam-{name}")).await;
            let nodes = env.cluster_informer::<Node>();
            let c = NodeIpamController::new(
                env.client.clone(),
                nodes.clone(),
                vec![CidrSet::new("10.250.0.0/16", 24).unwrap()],
                env.recorder("node-ipam-controller"),
            );
            env.start().await;
            let node_name = format!("{}-node", env.ns);
            let mut node = json!({"metadata": {"name": node_name}});
            if let Some(cidr) = existing {
                node["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
            }
            let node: Node = env.create_cluster(node).await;
            env.cached(&nodes, &[&node]).await;
            env.sync(c.as_ref(), &node_name).await;

            let got = env.cluster_api::<Node>().get(&node_name).await.unwrap();
            let spec = got.spec.unwrap_or_default();
            let cidr = spec.pod_cidr.clone().unwrap_or_default();
            match existing {
                Some(c) => assert_eq!(cidr, c, "{name}"),
                None => assert!(
                    cidr.starts_with("10.250.") && cidr.ends_with(".0/24"),
                    "{name}: {cidr}"
                ),
            }
            assert_eq!(spec.pod_cidrs.unwrap_or_default(), [cidr], "{name}");
            env.cluster_api::<Node>()
                .delete(&node_name, &Default::default())
                .await
                .unwrap();
        }
    }
}
