//! The scheduler cache (upstream `backend/cache`): every node with the pods bound or
//! assumed on it. An assumed pod (chosen but not yet bound) counts on its node at once,
//! so the next cycle sees the capacity it takes; the informer's copy confirms it, a
//! failed bind forgets it. Owned by the scheduling loop alone, so it needs no locks.

use crate::framework::{NodeInfo, PodInfo};
use k8s_openapi::api::core::v1::Node;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Default)]
pub struct Cache {
    pub nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Pod uid -> (node name, assumed).
    pods: HashMap<String, (String, bool)>,
    /// Pods bound to nodes not seen yet.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    image_nodes: HashMap<String, usize>,
    images_dirty: bool,
}

impl Cache {
    pub fn add_or_update_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.index.get(&name) {
            Some(&i) => self.nodes[i].set_node(node),
            None => {
                let mut info = NodeInfo::default();
                info.set_node(node);
                for p in self.orphans.remove(&name).unwrap_or_default() {
                    info.add_pod(p);
                }
                self.index.insert(name, self.nodes.len());
                self.nodes.push(info);
            }
        }
        self.images_dirty = true;
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let info = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
        // Pods of a deleted node stay known until they are deleted themselves.
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
        self.images_dirty = true;
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    fn place(&mut self, node: &str, p: Arc<PodInfo>) {
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(p),
            None => self.orphans.entry(node.to_string()).or_default().push(p),
        }
    }

    fn unplace(&mut self, uid: &str) {
        let Some((node, _)) = self.pods.remove(uid) else {
            return;
        };
        match self.index.get(&node) {
            Some(&i) => {
                self.nodes[i].remove_pod(uid);
            }
            None => {
                if let Some(list) = self.orphans.get_mut(&node) {
                    list.retain(|p| p.uid != uid);
                }
            }
        }
    }

    /// A bound pod from the informer (added or changed); confirms an assumed one.
    pub fn add_or_update_pod(&mut self, p: Arc<PodInfo>) {
        let node = p
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        self.unplace(&p.uid);
        self.pods.insert(p.uid.clone(), (node.clone(), false));
        self.place(&node, p);
    }

    pub fn remove_pod(&mut self, uid: &str) {
        self.unplace(uid);
    }

    /// Counts the pod on `node` before its binding is written.
    pub fn assume(&mut self, p: Arc<PodInfo>, node: &str) {
        self.unplace(&p.uid);
        self.pods.insert(p.uid.clone(), (node.to_string(), true));
        self.place(node, p);
    }

    /// Undoes an assumption whose binding failed (a bound copy already seen stays).
    pub fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|(_, assumed)| *assumed) {
            self.unplace(uid);
        }
    }

    pub fn is_assumed_or_bound(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// Uids of the pods known on nodes (for resyncing after a relist).
    pub fn pod_uids(&self) -> HashSet<String> {
        self.pods
            .iter()
            .filter(|(_, (_, assumed))| !assumed)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Recounts how many nodes hold each image, if nodes changed.
    pub fn refresh_images(&mut self) {
        if self.images_dirty {
            self.image_nodes.clear();
            for n in &self.nodes {
                for image in n.images.keys() {
                    *self.image_nodes.entry(image.clone()).or_default() += 1;
                }
            }
            self.images_dirty = false;
        }
    }

    /// How many nodes hold each image (as of the last refresh).
    pub fn images(&self) -> &HashMap<String, usize> {
        &self.image_nodes
    }
}
