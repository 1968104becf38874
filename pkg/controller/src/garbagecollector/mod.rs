//! The garbage collector (upstream `pkg/controller/garbagecollector`): a graph of every
//! object's owner references, built from watches of every resource the apiserver serves
//! that can be listed, watched and deleted. Dependents whose owners are all gone are
//! deleted (background cascading); references to owners that are gone are dropped;
//! an owner deleted in the foreground (`foregroundDeletion` finalizer) waits until its
//! blocking dependents are gone (a dependent another owner still holds is released from
//! it instead, `decide.rs`), one deleted with `orphan` first has its dependents released.

mod decide;

use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use decide::{Decision, OwnerState};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// One object in the graph.
#[derive(Clone, Debug)]
struct Node {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid -> dependent uids.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: &str, node: Node) {
        self.remove(uid);
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.to_string());
        }
        self.nodes.insert(uid.to_string(), node);
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        for o in &old.owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
            }
        }
        Some(old)
    }
}

pub struct GarbageCollector {
    client: kube::Client,
    graph: Mutex<Graph>,
    /// Uids to look at: dependents whose owners changed, owners being deleted.
    queue: Arc<Queue>,
    /// Kinds by `apiVersion/kind`, to find an owner's resource (and whether it is
    /// namespaced).
    kinds: Mutex<HashMap<String, (ApiResource, bool)>>,
    /// The watch of each monitored resource, by `apiVersion/plural`.
    monitors: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// How often the served resources are rediscovered, so that dependents of custom
/// resources defined after start are collected (upstream's `garbageCollector.Sync`
/// period in kube-controller-manager).
pub const RESYNC_PERIOD: Duration = Duration::from_secs(30);

impl GarbageCollector {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(GarbageCollector {
            client,
            graph: Mutex::default(),
            queue: Queue::named("garbage_collector_attempt_to_delete"),
            kinds: Mutex::default(),
            monitors: Mutex::default(),
        })
    }

    /// Every served resource that can be listed, watched and deleted, with whether it is
    /// namespaced.
    async fn deletable_resources(&self) -> Result<Vec<(ApiResource, bool)>, String> {
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for group in discovery.groups() {
            for (res, caps) in group.recommended_resources() {
                if caps.supports_operation(verbs::LIST)
                    && caps.supports_operation(verbs::WATCH)
                    && caps.supports_operation(verbs::DELETE)
                {
                    let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
                    out.push((res, namespaced));
                }
            }
        }
        Ok(out)
    }

    /// Starts a watch for each resource not yet monitored and stops those of resources
    /// no longer served (upstream `GraphBuilder.syncMonitors`).
    fn sync_monitors(self: &Arc<Self>, resources: Vec<(ApiResource, bool)>, initial: bool) {
        let mut monitors = self.monitors.lock().unwrap();
        let mut kinds = self.kinds.lock().unwrap();
        let wanted: HashSet<String> = resources
            .iter()
            .map(|(r, _)| format!("{}/{}", r.api_version, r.plural))
            .collect();
        monitors.retain(|key, task| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(resource = %key, "garbage collector stops monitoring");
                task.abort();
            }
            keep
        });
        kinds.retain(|_, (r, _)| wanted.contains(&format!("{}/{}", r.api_version, r.plural)));
        for (res, namespaced) in resources {
            let key = format!("{}/{}", res.api_version, res.plural);
            kinds.insert(
                format!("{}/{}", res.api_version, res.kind),
                (res.clone(), namespaced),
            );
            if monitors.contains_key(&key) {
                continue;
            }
            if initial {
                tracing::debug!(resource = %key, "garbage collector monitors");
            } else {
                tracing::info!(resource = %key, "garbage collector monitors a new resource");
            }
            let me = self.clone();
            monitors.insert(key, tokio::spawn(async move { me.watch(res).await }));
        }
    }

    /// Discovers the resources, watches each, and processes the queue.
    pub async fn run(self: Arc<Self>, workers: usize) -> Result<(), String> {
        self.sync_monitors(self.deletable_resources().await?, true);
        let resync = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESYNC_PERIOD);
            tick.tick().await;
            loop {
                tick.tick().await;
                tracing::debug!("garbage collector rediscovering resources");
                // A discovery that stalls must not stop later ones (upstream's discovery
                // client has a timeout of its own).
                match tokio::time::timeout(RESYNC_PERIOD, resync.deletable_resources()).await {
                    Ok(Ok(resources)) => resync.sync_monitors(resources, false),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "garbage collector rediscovery failed")
                    }
                    Err(_) => tracing::warn!("garbage collector rediscovery timed out"),
                }
            }
        });
        crate::reconciler::run_workers(self, workers).await;
        Ok(())
    }

    async fn watch(self: Arc<Self>, res: ApiResource) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &res);
        let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let (obj, deleted) = match ev {
                Ok(Event::Apply(o) | Event::InitApply(o)) => (o, false),
                Ok(Event::Delete(o)) => (o, true),
                _ => continue,
            };
            let Some(uid) = obj.metadata.uid.clone() else {
                continue;
            };
            if deleted {
                let dependents = {
                    let mut g = self.graph.lock().unwrap();
                    g.remove(&uid);
                    g.dependents.get(&uid).cloned().unwrap_or_default()
                };
                // Their owner is gone: each may now be garbage.
                for d in dependents {
                    self.queue.add(d);
                }
                continue;
            }
            let node = Node {
                resource: res.clone(),
                namespace: obj.metadata.namespace.clone(),
                name: obj.metadata.name.clone().unwrap_or_default(),
                owners: obj.metadata.owner_references.clone().unwrap_or_default(),
                finalizers: obj.metadata.finalizers.clone().unwrap_or_default(),
                deleting: obj.metadata.deletion_timestamp.is_some(),
            };
            let interesting = !node.owners.is_empty()
                || (node.deleting
                    && node
                        .finalizers
                        .iter()
                        .any(|f| f == FOREGROUND || f == ORPHAN));
            self.graph.lock().unwrap().upsert(&uid, node);
            if interesting {
                self.queue.add(uid);
            }
        }
    }

    fn api_for(&self, n: &Node) -> Api<DynamicObject> {
        match &n.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &n.resource),
            None => Api::all_with(self.client.clone(), &n.resource),
        }
    }

    /// Whether the owner still exists (by uid), asking the apiserver when the graph
    /// has not seen it.
    async fn owner_exists(&self, dependent: &Node, o: &OwnerReference) -> Result<bool, String> {
        if self.graph.lock().unwrap().nodes.contains_key(&o.uid) {
            return Ok(true);
        }
        let known = self
            .kinds
            .lock()
            .unwrap()
            .get(&format!("{}/{}", o.api_version, o.kind))
            .cloned();
        let Some((res, namespaced)) = known else {
            // A kind not discovered (yet): retried until a rediscovery finds it, never
            // taken for a dangling reference (upstream's REST-mapping error).
            return Err(format!(
                "unable to get REST mapping for {}/{}",
                o.api_version, o.kind
            ));
        };
        let api: Api<DynamicObject> = match (&dependent.namespace, namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &res),
            _ => Api::all_with(self.client.clone(), &res),
        };
        match api.get_opt(&o.name).await {
            Ok(Some(owner)) => Ok(owner.metadata.uid.as_deref() == Some(o.uid.as_str())),
            Ok(None) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `Some(delay)`: look again later (foreground deletion waiting on dependents).
    async fn process(&self, uid: &str) -> Result<Option<Duration>, String> {
        let Some(node) = self.graph.lock().unwrap().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        let api = self.api_for(&node);
        // An owner being deleted with the orphan or foreground finalizer.
        if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
            let dependents: Vec<Node> = self.dependents_of(uid);
            for d in dependents {
                let refs: Vec<OwnerReference> =
                    d.owners.iter().filter(|o| o.uid != uid).cloned().collect();
                let patch = serde_json::json!({"metadata": {"ownerReferences": refs}});
                let _ = self
                    .api_for(&d)
                    .patch(&d.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
            return self.drop_finalizer(&api, &node, ORPHAN).await.map(|_| None);
        }
        if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
            let dependents = self.dependents_with_uids(uid);
            let blocking: Vec<(&str, &Node)> = dependents
                .iter()
                .map(|(u, d)| (u.as_str(), d))
                .filter(|(_, d)| {
                    d.owners
                        .iter()
                        .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
                })
                .collect();
            if blocking.is_empty() {
                return self
                    .drop_finalizer(&api, &node, FOREGROUND)
                    .await
                    .map(|_| None);
            }
            // Each blocking dependent is deleted, or (when another owner keeps it) stops
            // referencing this owner.
            let mut first_error = None;
            for (d_uid, d) in blocking {
                if !d.deleting
                    && let Err(e) = self.attempt_to_delete(d_uid, d).await
                {
                    first_error.get_or_insert(e);
                }
            }
            return match first_error {
                Some(e) => Err(e),
                None => Ok(Some(Duration::from_secs(1))),
            };
        }
        if node.owners.is_empty() || node.deleting {
            return Ok(None);
        }
        self.attempt_to_delete(uid, &node).await.map(|_| None)
    }

    /// A dependent whose owners may be gone or waiting for it: kept, released from
    /// owners that no longer hold it, or deleted (upstream `attemptToDeleteItem`).
    async fn attempt_to_delete(&self, uid: &str, node: &Node) -> Result<(), String> {
        let mut owners = Vec::new();
        for o in &node.owners {
            let in_graph = self.graph.lock().unwrap().nodes.get(&o.uid).cloned();
            let state = match in_graph {
                Some(owner)
                    if owner.deleting && owner.finalizers.iter().any(|f| f == FOREGROUND) =>
                {
                    OwnerState::Waiting
                }
                Some(_) => OwnerState::Solid,
                None if self.owner_exists(node, o).await? => OwnerState::Solid,
                None => OwnerState::Dangling,
            };
            owners.push((o.uid.clone(), state));
        }
        let has_dependents = !self.dependents_of(uid).is_empty();
        let api = self.api_for(node);
        match decide::decide(&owners, has_dependents, &node.finalizers) {
            Decision::Nothing => Ok(()),
            Decision::DropOwners(uids) => {
                let keep: Vec<&OwnerReference> = node
                    .owners
                    .iter()
                    .filter(|o| !uids.contains(&o.uid))
                    .collect();
                merge_patch(
                    &api,
                    &node.name,
                    serde_json::json!({"metadata": {"ownerReferences": keep}}),
                )
                .await
            }
            Decision::Delete(policy) => {
                let params = DeleteParams {
                    propagation_policy: Some(policy),
                    ..Default::default()
                };
                match api.delete(&node.name, &params).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    fn dependents_with_uids(&self, uid: &str) -> Vec<(String, Node)> {
        let g = self.graph.lock().unwrap();
        g.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| g.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }

    fn dependents_of(&self, uid: &str) -> Vec<Node> {
        self.dependents_with_uids(uid)
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    async fn drop_finalizer(
        &self,
        api: &Api<DynamicObject>,
        node: &Node,
        finalizer: &str,
    ) -> Result<(), String> {
        let rest: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        merge_patch(
            api,
            &node.name,
            serde_json::json!({"metadata": {"finalizers": rest}}),
        )
        .await
    }
}

impl Reconciler for GarbageCollector {
    type Error = String;

    fn name(&self) -> &str {
        "garbagecollector"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Its monitors come and go with discovery (`run` starts them).
    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![]
    }

    async fn sync(&self, uid: &str) -> Result<Action, String> {
        self.process(uid).await.map(Action::from)
    }
}

/// A merge patch of an object's metadata; an object already gone is no error.
async fn merge_patch(
    api: &Api<DynamicObject>,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), String> {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, wait};
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    /// One sync of a graph node: a dependent whose owner does not exist is deleted, one
    /// whose owner does is kept, and an owner deleted with the orphan policy releases
    /// its dependents and then goes.
    #[tokio::test]
    async fn sync_collects_and_orphans() {
        let env = Env::new("gc").await;
        let gc = GarbageCollector::new(env.client.clone());
        gc.sync_monitors(gc.deletable_resources().await.unwrap(), true);
        let cms = env.api::<ConfigMap>();
        let owner: ConfigMap = env.create(json!({"metadata": {"name": "owner"}})).await;
        let owned_by = |name: &str, uid: &str| {
            json!({"metadata": {"name": name, "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})
        };
        let dangling: ConfigMap = env
            .create(owned_by("dangling", "00000000-0000-0000-0000-000000000000"))
            .await;
        let kept: ConfigMap = env
            .create(owned_by("kept", owner.metadata.uid.as_deref().unwrap()))
            .await;
        let uid = |o: &ConfigMap| o.metadata.uid.clone().unwrap();
        let in_graph = |u: String, deleting: bool| {
            let gc = gc.clone();
            move || {
                gc.graph
                    .lock()
                    .unwrap()
                    .nodes
                    .get(&u)
                    .filter(|n| n.deleting == deleting)
                    .map(|_| ())
            }
        };
        for o in [&owner, &dangling, &kept] {
            wait("the graph", in_graph(uid(o), false)).await;
        }

        env.sync(gc.as_ref(), &uid(&dangling)).await;
        env.sync(gc.as_ref(), &uid(&kept)).await;
        assert!(
            cms.get_opt("dangling").await.unwrap().is_none(),
            "dangling dependent deleted"
        );
        assert!(
            cms.get_opt("kept").await.unwrap().is_some(),
            "owned dependent kept"
        );

        // Orphan: the owner waits with the orphan finalizer until its dependents are free.
        let orphan = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
            ..Default::default()
        };
        cms.delete("owner", &orphan).await.unwrap();
        wait(
            "the owner's deletion in the graph",
            in_graph(uid(&owner), true),
        )
        .await;
        env.sync(gc.as_ref(), &uid(&owner)).await;
        let freed = cms.get("kept").await.unwrap();
        assert!(
            freed
                .metadata
                .owner_references
                .unwrap_or_default()
                .is_empty(),
            "dependent released"
        );
        assert!(
            cms.get_opt("owner").await.unwrap().is_none(),
            "owner deleted once its finalizer was dropped"
        );
    }
}
