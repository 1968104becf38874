//! The watch cache (upstream `storage/cacher`): one storage watch per resource feeds an
//! in-memory copy of every object and a window of recent events. Lists at
//! `resourceVersion=0` / `>=N` and all watches are served from memory; every event is
//! decoded and encoded once and shared by all watchers; a watcher that cannot keep up
//! is dropped (its client re-watches from its last resourceVersion) instead of stalling
//! the others.

use super::interface::EventKind;
use super::store::{ReadAt, ResourceStore, decode, too_old};
use apimachinery::StatusError;
use apimachinery::fields::FieldSelector;
use apimachinery::labels::Selector;
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Field-selector attributes of an object (`metadata.name`, `spec.nodeName`, ...).
pub type FieldsFn = Arc<dyn Fn(&Value) -> BTreeMap<String, String> + Send + Sync>;

/// An object as the cache holds it: parsed, encoded once, with its selector attributes.
pub struct CachedObject {
    pub key: String,
    pub rv: i64,
    pub value: Value,
    pub bytes: Bytes,
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    /// The protobuf message of `value` (no envelope), made on first use and shared by
    /// every protobuf watcher and list; None for kinds without a protobuf form.
    protobuf: std::sync::OnceLock<Option<Bytes>>,
}

impl CachedObject {
    /// The object's protobuf message, encoded once.
    pub fn protobuf(&self) -> Option<&Bytes> {
        self.protobuf
            .get_or_init(|| {
                let (v, k) = (
                    self.value["apiVersion"].as_str()?,
                    self.value["kind"].as_str()?,
                );
                let idx = apimachinery::protobuf::schema::Schema::get().by_kind(v, k)?;
                apimachinery::protobuf::transcode::encode(idx, &self.value)
                    .ok()
                    .map(Bytes::from)
            })
            .as_ref()
    }

    pub fn new(key: String, rv: i64, value: Value, fields: &FieldsFn) -> Self {
        let labels = value["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let fields = fields(&value);
        let bytes = Bytes::from(serde_json::to_vec(&value).expect("JSON values serialize"));
        Self {
            key,
            rv,
            value,
            bytes,
            labels,
            fields,
            protobuf: std::sync::OnceLock::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchType {
    Added,
    Modified,
    Deleted,
}

impl WatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchType::Added => "ADDED",
            WatchType::Modified => "MODIFIED",
            WatchType::Deleted => "DELETED",
        }
    }
}

/// One change as stored in the event window.
pub struct CacheEvent {
    pub rv: i64,
    pub kind: EventKind,
    pub created: bool,
    pub obj: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
    at: Instant,
}

/// What a watcher receives.
#[derive(Clone)]
pub struct WatchItem {
    pub kind: WatchType,
    pub obj: Arc<CachedObject>,
}

/// Which objects a watch or list wants: a key prefix (namespace or single name) and selectors.
#[derive(Clone, Default)]
pub struct Filter {
    pub prefix: String,
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, o: &CachedObject) -> bool {
        o.key.starts_with(&self.prefix)
            && self.labels.matches(&o.labels)
            && self.fields.matches(&o.fields)
    }

    pub fn is_filtering(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    /// How a change looks to this filter: objects moving in or out of the selection are
    /// ADDED / DELETED, as upstream does.
    /// `created`: the put created the key (its create and mod revisions are equal); a
    /// modification whose previous state is unknown (compacted) is judged on its own.
    pub fn classify(
        &self,
        kind: EventKind,
        created: bool,
        obj: &CachedObject,
        prev: Option<&CachedObject>,
    ) -> Option<WatchType> {
        if !obj.key.starts_with(&self.prefix) {
            return None;
        }
        let now = self.matches(obj);
        match kind {
            EventKind::Delete => now.then_some(WatchType::Deleted),
            EventKind::Put if created => now.then_some(WatchType::Added),
            EventKind::Put => match (prev.map(|p| self.matches(p)), now) {
                (None, true) => Some(WatchType::Modified),
                (Some(false), true) => Some(WatchType::Added),
                (Some(true), true) => Some(WatchType::Modified),
                (Some(true), false) => Some(WatchType::Deleted),
                _ => None,
            },
        }
    }
}

struct WatcherHandle {
    filter: Filter,
    tx: mpsc::Sender<Result<WatchItem, StatusError>>,
}

#[derive(Default)]
struct State {
    ready: bool,
    rv: i64,
    /// The oldest revision a watch may resume from.
    oldest_rv: i64,
    objects: BTreeMap<String, Arc<CachedObject>>,
    events: VecDeque<Arc<CacheEvent>>,
    watchers: Vec<WatcherHandle>,
}

/// A started watch: synthetic/replayed events first, then live ones.
pub struct CacheWatch {
    pub initial: Vec<WatchItem>,
    /// Live events; an `Err` (e.g. history compacted under a storage watch) ends the watch.
    pub rx: mpsc::Receiver<Result<WatchItem, StatusError>>,
    /// The revision the initial events reflect.
    pub rv: i64,
}

/// Upstream keeps at least 75s of events for resuming watches.
const EVENT_FRESHNESS: Duration = Duration::from_secs(75);
const MAX_EVENTS: usize = 100 * 1024;
/// Buffered events per watcher before it counts as too slow and is dropped (its client
/// re-watches from its last resourceVersion).
const WATCHER_BUFFER: usize = 100;
/// How long a read waits for the cache to reach a requested resourceVersion.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

pub struct Cacher {
    store: ResourceStore,
    fields: FieldsFn,
    state: RwLock<State>,
    rv_tx: watch::Sender<i64>,
    min_events: usize,
    /// Set when the resource is no longer served (a CRD went away).
    stop: watch::Sender<bool>,
}

/// The synthetic ADDED events of a watch's starting state.
fn snapshot(st: &State, filter: &Filter) -> Vec<WatchItem> {
    let start = filter.prefix.as_str();
    st.objects
        .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(start))
        .filter(|(_, o)| filter.matches(o))
        .map(|(_, o)| WatchItem {
            kind: WatchType::Added,
            obj: o.clone(),
        })
        .collect()
}

impl Cacher {
    /// Starts the cache's reflector loop; reads wait until its first list completes.
    pub fn start(store: ResourceStore, fields: FieldsFn, min_events: usize) -> Arc<Cacher> {
        let (rv_tx, _) = watch::channel(0);
        let c = Arc::new(Cacher {
            store,
            fields,
            state: RwLock::new(State::default()),
            rv_tx,
            min_events,
            stop: watch::channel(false).0,
        });
        let weak = Arc::downgrade(&c);
        tokio::spawn(async move {
            loop {
                let Some(c) = weak.upgrade() else { return };
                if *c.stop.borrow() {
                    return;
                }
                if let Err(e) = c.sync_once().await {
                    tracing::warn!(resource = %c.store.resource, error = %e, "watch cache lost its storage watch; relisting");
                }
                drop(c);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        c
    }

    /// Ends the reflector; watchers see their streams end.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        self.state.write().unwrap().watchers.clear();
    }

    pub fn store(&self) -> &ResourceStore {
        &self.store
    }

    /// The revision the cache has caught up to.
    pub fn current_rv(&self) -> i64 {
        *self.rv_tx.borrow()
    }

    /// Lists everything, then follows the storage watch until it fails.
    async fn sync_once(&self) -> Result<(), StatusError> {
        let all = |_: &_| true;
        let page = self
            .store
            .list(&self.store.prefix, ReadAt::Latest, 0, None, &all, false)
            .await?;
        let mut objects = BTreeMap::new();
        for kv in &page.items {
            let v = decode(kv)?;
            objects.insert(
                kv.key.clone(),
                Arc::new(CachedObject::new(
                    kv.key.clone(),
                    kv.mod_revision,
                    v,
                    &self.fields,
                )),
            );
        }
        let mut rx = self.store.watch(&self.store.prefix, page.revision).await?;
        {
            let mut st = self.state.write().unwrap();
            // Watchers of the previous incarnation cannot be continued consistently.
            st.watchers.clear();
            st.events.clear();
            st.objects = objects;
            st.rv = page.revision;
            st.oldest_rv = page.revision;
            st.ready = true;
        }
        self.rv_tx.send_replace(page.revision);
        let mut stop = self.stop.subscribe();
        loop {
            let batch = tokio::select! {
                b = rx.recv() => b,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let Some(batch) = batch else { break };
            let batch = batch?;
            let mut prepared = Vec::with_capacity(batch.events.len());
            for ev in batch.events {
                let Some(d) = ev.decode()? else { continue };
                prepared.push((
                    ev.kind,
                    d.created,
                    ev.kv.key,
                    ev.kv.mod_revision,
                    d.obj,
                    d.prev,
                ));
            }
            self.apply(prepared, batch.revision);
        }
        Err(StatusError::internal("storage watch ended"))
    }

    fn apply(
        &self,
        prepared: Vec<(EventKind, bool, String, i64, Value, Option<Value>)>,
        reached: i64,
    ) {
        let mut st = self.state.write().unwrap();
        for (kind, created, key, rv, obj, prev) in prepared {
            let obj = Arc::new(CachedObject::new(key.clone(), rv, obj, &self.fields));
            let prev = match st.objects.get(&key) {
                Some(p) => Some(p.clone()),
                None => prev.map(|p| Arc::new(CachedObject::new(key.clone(), rv, p, &self.fields))),
            };
            match kind {
                EventKind::Put => st.objects.insert(key, obj.clone()),
                EventKind::Delete => st.objects.remove(&key),
            };
            let ev = Arc::new(CacheEvent {
                rv,
                kind,
                created,
                obj,
                prev,
                at: Instant::now(),
            });
            st.watchers.retain(|w| {
                let Some(t) = w
                    .filter
                    .classify(ev.kind, ev.created, &ev.obj, ev.prev.as_deref())
                else {
                    return !w.tx.is_closed();
                };
                // A full buffer means the client is not reading: drop it rather than stall.
                w.tx.try_send(Ok(WatchItem {
                    kind: t,
                    obj: ev.obj.clone(),
                }))
                .is_ok()
            });
            st.events.push_back(ev);
            st.rv = rv;
        }
        st.rv = st.rv.max(reached);
        while st.events.len() > MAX_EVENTS
            || (st.events.len() > self.min_events
                && st
                    .events
                    .front()
                    .is_some_and(|e| e.at.elapsed() > EVENT_FRESHNESS))
        {
            let gone = st.events.pop_front().unwrap();
            st.oldest_rv = gone.rv;
        }
        let rv = st.rv;
        drop(st);
        self.rv_tx.send_replace(rv);
    }

    /// Waits until the cache has seen revision `rv` (upstream: 504 "Too large resource version").
    async fn wait_for(&self, rv: i64) -> Result<(), StatusError> {
        let mut rx = self.rv_tx.subscribe();
        let wait = rx.wait_for(|cur| *cur >= rv && self.state.read().unwrap().ready);
        match tokio::time::timeout(FRESHNESS_WAIT, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StatusError::timeout(
                format!(
                    "Too large resource version: {rv}, current: {}",
                    self.current_rv()
                ),
                1,
            )),
        }
    }

    /// Waits until the cache is as fresh as storage is now (a consistent read from cache).
    async fn wait_fresh(&self) -> Result<(), StatusError> {
        let now = self
            .store
            .backend
            .current_revision()
            .await
            .map_err(|e| self.store.map_err(e, ""))?;
        if self.current_rv() < now {
            // Writes elsewhere moved the revision on: have the watch report it now.
            self.store.backend.request_progress();
        }
        self.wait_for(now).await
    }

    /// Lists from memory. `min_rv`: None = consistent with storage, Some(0) = any, Some(n) = at least n.
    pub async fn list(
        &self,
        filter: &Filter,
        min_rv: Option<i64>,
    ) -> Result<(Vec<Arc<CachedObject>>, i64), StatusError> {
        match min_rv {
            None => self.wait_fresh().await?,
            Some(rv) => self.wait_for(rv.max(1)).await?,
        }
        let st = self.state.read().unwrap();
        let items = snapshot(&st, filter).into_iter().map(|i| i.obj).collect();
        Ok((items, st.rv))
    }

    /// Starts a watch. `from`: None = current state then changes (consistent start),
    /// Some(0) = cached state then changes, Some(n) = changes after n.
    /// `initial_events` forces synthetic ADDED events for the state (sendInitialEvents).
    pub async fn watch(
        &self,
        filter: Filter,
        from: Option<i64>,
        initial_events: bool,
    ) -> Result<CacheWatch, StatusError> {
        match from {
            None => self.wait_fresh().await?,
            Some(0) => self.wait_for(1).await?,
            Some(n) => {
                if !initial_events && n < self.state.read().unwrap().oldest_rv {
                    return Err(too_old(n, self.state.read().unwrap().oldest_rv));
                }
                self.wait_for(n).await?
            }
        }
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        let mut st = self.state.write().unwrap();
        let initial = match from {
            _ if initial_events => snapshot(&st, &filter),
            None | Some(0) => snapshot(&st, &filter),
            Some(n) => {
                if n < st.oldest_rv {
                    return Err(too_old(n, st.oldest_rv));
                }
                st.events
                    .iter()
                    .filter(|e| e.rv > n)
                    .filter_map(|e| {
                        filter
                            .classify(e.kind, e.created, &e.obj, e.prev.as_deref())
                            .map(|kind| WatchItem {
                                kind,
                                obj: e.obj.clone(),
                            })
                    })
                    .collect()
            }
        };
        st.watchers.push(WatcherHandle { filter, tx });
        Ok(CacheWatch {
            initial,
            rx,
            rv: st.rv,
        })
    }

    /// Live objects (for `apiserver_storage_objects` and namespace checks).
    pub fn len(&self) -> usize {
        self.state.read().unwrap().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One object by key, from memory.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state.read().unwrap().objects.get(key).cloned()
    }
}
