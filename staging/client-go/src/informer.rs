//! Shared informers (upstream `client-go/tools/cache` SharedInformer): one watch per
//! kind feeding a local store every controller reads, and the controllers' event
//! handlers (which only enqueue keys: reconciling is level-triggered from the store).

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use std::sync::{Arc, Mutex};

/// Called with each added, changed (false) or deleted (true) object.
pub type Handler<K> = Box<dyn Fn(&K, bool) + Send + Sync>;

pub struct Informer<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    pub store: Store<K>,
    writer: Mutex<Option<reflector::store::Writer<K>>>,
    handlers: Mutex<Vec<Handler<K>>>,
    api: Api<K>,
    config: watcher::Config,
    /// Set once the first list is in the store.
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K> Informer<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default + Send + Sync,
{
    pub fn new(api: Api<K>) -> Arc<Self> {
        Self::with_config(api, watcher::Config::default())
    }

    /// An informer over a selection (e.g. the kubelet's `spec.nodeName=<node>` pods).
    pub fn with_config(api: Api<K>, config: watcher::Config) -> Arc<Self> {
        let (store, writer) = reflector::store();
        Arc::new(Informer {
            store,
            writer: Mutex::new(Some(writer)),
            handlers: Mutex::default(),
            api,
            config,
            synced: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Registers a handler. As client-go's informers do, a handler added after the
    /// informer started is first told about every object already in the store, so a
    /// controller set up late misses nothing.
    pub fn add_handler(&self, h: impl Fn(&K, bool) + Send + Sync + 'static) {
        let mut handlers = self.handlers.lock().unwrap();
        for obj in self.store.state() {
            h(&obj, false);
        }
        handlers.push(Box::new(h));
    }

    /// Starts the watch (once); handlers see every event after the store has it.
    pub fn run(self: &Arc<Self>) {
        let Some(writer) = self.writer.lock().unwrap().take() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let stream = watcher::watcher(me.api.clone(), me.config.clone())
                .default_backoff()
                .reflect(writer);
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let (obj, deleted) = match ev {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => (o, false),
                    Ok(Event::Delete(o)) => (o, true),
                    Ok(Event::InitDone) => {
                        me.synced.send_replace(true);
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "watch failed; retrying");
                        continue;
                    }
                };
                for h in me.handlers.lock().unwrap().iter() {
                    h(&obj, deleted);
                }
            }
        });
    }

    /// An informer of `K` fed by another informer's objects through `convert` (upstream
    /// runs the ReplicaSet controller over ReplicationControllers converted this way).
    /// Starting the source starts it.
    pub fn mirror<S>(source: &Arc<Informer<S>>, convert: fn(&S) -> K) -> Arc<Self>
    where
        S: kube::Resource
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
        S::DynamicType: std::hash::Hash + Eq + Clone + Default + Send + Sync,
    {
        let me = Informer::new(Api::<K>::all(source.api.clone().into_client()));
        let writer = me.writer.lock().unwrap().take();
        let writer = Mutex::new(writer);
        let target = me.clone();
        source.add_handler(move |obj, deleted| {
            let obj = convert(obj);
            if let Some(w) = writer.lock().unwrap().as_mut() {
                w.apply_watcher_event(&if deleted {
                    Event::Delete(obj.clone())
                } else {
                    Event::Apply(obj.clone())
                });
            }
            for h in target.handlers.lock().unwrap().iter() {
                h(&obj, deleted);
            }
        });
        let (src, target) = (source.clone(), me.clone());
        tokio::spawn(async move {
            src.synced().await;
            target.synced.send_replace(true);
        });
        me
    }

    /// Waits until the first list has been stored.
    pub async fn synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

/// `namespace/name` of an object (the work queues' keys).
pub fn key<K: kube::Resource>(o: &K) -> String {
    let m = o.meta();
    match &m.namespace {
        Some(ns) => format!("{ns}/{}", m.name.as_deref().unwrap_or_default()),
        None => m.name.clone().unwrap_or_default(),
    }
}

/// Splits a key into namespace (empty for cluster-scoped) and name.
pub fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}
