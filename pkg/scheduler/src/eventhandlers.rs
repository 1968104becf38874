//! Informers feeding the scheduling loop (upstream `eventhandlers.go`): pods that are
//! not finished (pending ones for the queue, bound ones for the cache), nodes, and
//! PodDisruptionBudgets (for preemption), as messages on the loop's channel. After a
//! relist the loop learns the full set, so objects deleted while the watch was down are
//! dropped too.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, CSIStorageCapacity, StorageClass};
use kube::Api;
use kube::runtime::watcher::{self, Event};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Sender;

pub enum Message {
    Pod(Arc<Pod>),
    PodDeleted(Arc<Pod>),
    /// The uids of every pod after a (re)list.
    PodsListed(HashSet<String>),
    Node(Arc<Node>),
    NodeDeleted(String),
    NodesListed(HashSet<String>),
    Pdb(Arc<PodDisruptionBudget>),
    PdbDeleted(String),
    PdbsListed(HashSet<String>),
    /// A claim, volume, storage class or CSINode was added or changed.
    Stored(Stored),
    StoredDeleted(StoredKind, String),
    StoredListed(StoredKind, HashSet<String>),
    /// A binding finished: the pod's uid, its node, and the error if it failed.
    Bound {
        uid: String,
        node: String,
        error: Option<String>,
    },
}

/// The storage objects the volume plugins read.
pub enum Stored {
    Claim(Arc<PersistentVolumeClaim>),
    Volume(Arc<PersistentVolume>),
    Class(Arc<StorageClass>),
    CsiNode(Arc<CSINode>),
    CsiDriver(Arc<CSIDriver>),
    Capacity(Arc<CSIStorageCapacity>),
    /// The objects whose selectors give pods default spreading.
    Service(Arc<Service>),
    ReplicationController(Arc<ReplicationController>),
    ReplicaSet(Arc<ReplicaSet>),
    StatefulSet(Arc<StatefulSet>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredKind {
    Claim,
    Volume,
    Class,
    CsiNode,
    CsiDriver,
    Capacity,
    Service,
    ReplicationController,
    ReplicaSet,
    StatefulSet,
}

/// `namespace/name` for namespaced objects, `name` otherwise.
pub fn key_of(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    match &m.namespace {
        Some(ns) => format!("{ns}/{}", m.name.as_deref().unwrap_or_default()),
        None => m.name.clone().unwrap_or_default(),
    }
}

/// What the loop is told of one kind of object.
struct Kind<K> {
    applied: fn(Arc<K>) -> Message,
    deleted: fn(Arc<K>) -> Message,
    listed: fn(HashSet<String>) -> Message,
    key: fn(&K) -> String,
}

async fn watch<K>(api: Api<K>, cfg: watcher::Config, kind: Kind<K>, tx: Sender<Message>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut listed = HashSet::new();
    let mut stream = watcher::watcher(api, cfg).boxed();
    while let Some(ev) = stream.next().await {
        let sent = match ev {
            Ok(Event::Apply(o)) => tx.send((kind.applied)(Arc::new(o))),
            Ok(Event::Delete(o)) => tx.send((kind.deleted)(Arc::new(o))),
            Ok(Event::Init) => {
                listed.clear();
                Ok(())
            }
            Ok(Event::InitApply(o)) => {
                listed.insert((kind.key)(&o));
                tx.send((kind.applied)(Arc::new(o)))
            }
            Ok(Event::InitDone) => tx.send((kind.listed)(std::mem::take(&mut listed))),
            Err(e) => {
                tracing::warn!(error = %e, kind = %K::kind(&Default::default()), "watch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Unfinished pods, as upstream's pod informer (`status.phase!=Succeeded,status.phase!=Failed`).
pub async fn watch_pods(client: kube::Client, tx: Sender<Message>) {
    let cfg = watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    let kind = Kind {
        applied: Message::Pod,
        deleted: Message::PodDeleted,
        listed: Message::PodsListed,
        key: |p: &Pod| p.metadata.uid.clone().unwrap_or_default(),
    };
    watch(Api::all(client), cfg, kind, tx).await
}

pub async fn watch_nodes(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: Message::Node,
        deleted: |n: Arc<Node>| Message::NodeDeleted(n.metadata.name.clone().unwrap_or_default()),
        listed: Message::NodesListed,
        key: |n: &Node| n.metadata.name.clone().unwrap_or_default(),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub fn pdb_key(p: &PodDisruptionBudget) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

pub async fn watch_pdbs(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: Message::Pdb,
        deleted: |p: Arc<PodDisruptionBudget>| Message::PdbDeleted(pdb_key(&p)),
        listed: Message::PdbsListed,
        key: pdb_key,
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_claims(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::Claim(o)),
        deleted: |o: Arc<PersistentVolumeClaim>| {
            Message::StoredDeleted(StoredKind::Claim, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::Claim, k),
        key: |o: &PersistentVolumeClaim| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_volumes(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::Volume(o)),
        deleted: |o: Arc<PersistentVolume>| {
            Message::StoredDeleted(StoredKind::Volume, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::Volume, k),
        key: |o: &PersistentVolume| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_classes(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::Class(o)),
        deleted: |o: Arc<StorageClass>| {
            Message::StoredDeleted(StoredKind::Class, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::Class, k),
        key: |o: &StorageClass| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_csi_nodes(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::CsiNode(o)),
        deleted: |o: Arc<CSINode>| Message::StoredDeleted(StoredKind::CsiNode, key_of(&o.metadata)),
        listed: |k| Message::StoredListed(StoredKind::CsiNode, k),
        key: |o: &CSINode| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_csi_drivers(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::CsiDriver(o)),
        deleted: |o: Arc<CSIDriver>| {
            Message::StoredDeleted(StoredKind::CsiDriver, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::CsiDriver, k),
        key: |o: &CSIDriver| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_capacities(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::Capacity(o)),
        deleted: |o: Arc<CSIStorageCapacity>| {
            Message::StoredDeleted(StoredKind::Capacity, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::Capacity, k),
        key: |o: &CSIStorageCapacity| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_services(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::Service(o)),
        deleted: |o: Arc<Service>| Message::StoredDeleted(StoredKind::Service, key_of(&o.metadata)),
        listed: |k| Message::StoredListed(StoredKind::Service, k),
        key: |o: &Service| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_replication_controllers(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::ReplicationController(o)),
        deleted: |o: Arc<ReplicationController>| {
            Message::StoredDeleted(StoredKind::ReplicationController, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::ReplicationController, k),
        key: |o: &ReplicationController| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_replica_sets(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::ReplicaSet(o)),
        deleted: |o: Arc<ReplicaSet>| {
            Message::StoredDeleted(StoredKind::ReplicaSet, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::ReplicaSet, k),
        key: |o: &ReplicaSet| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}

pub async fn watch_stateful_sets(client: kube::Client, tx: Sender<Message>) {
    let kind = Kind {
        applied: |o| Message::Stored(Stored::StatefulSet(o)),
        deleted: |o: Arc<StatefulSet>| {
            Message::StoredDeleted(StoredKind::StatefulSet, key_of(&o.metadata))
        },
        listed: |k| Message::StoredListed(StoredKind::StatefulSet, k),
        key: |o: &StatefulSet| key_of(&o.metadata),
    };
    watch(Api::all(client), watcher::Config::default(), kind, tx).await
}
