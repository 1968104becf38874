//! Shared informers (upstream `client-go/tools/cache` SharedInformer): one list+watch per
//! kind feeding a local store every controller reads, and event handlers that hear of
//! each change as upstream's `ResourceEventHandler` does — an addition, an update with
//! the old and the new object, or a deletion with the object's last known state,
//! including objects found gone when a broken watch is replaced by a fresh list.
//! Handlers only enqueue keys: reconciling is level-triggered from the store.

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// One change to an informer's store, as its handlers see it.
#[derive(Debug)]
pub enum Change<'a, K> {
    Added(&'a K),
    /// Also sent for every object still present after a relist, as client-go does.
    Updated {
        old: &'a K,
        new: &'a K,
    },
    /// The object's last state (from the watch, or the store's copy when a relist no
    /// longer has it: upstream's `DeletedFinalStateUnknown`), and the copy handlers
    /// last saw, if any.
    Deleted(&'a K, Option<&'a K>),
}

impl<'a, K> Change<'a, K> {
    /// The object as it is now (the last state for a deletion).
    pub fn object(&self) -> &'a K {
        match self {
            Change::Added(o) | Change::Deleted(o, _) => o,
            Change::Updated { new, .. } => new,
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(self, Change::Deleted(..))
    }
}

pub type EventHandler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// The informer's objects by key (`namespace/name`, or `name` when cluster-scoped).
pub struct Store<K> {
    objects: RwLock<HashMap<String, Arc<K>>>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            objects: RwLock::default(),
        }
    }
}

impl<K: kube::Resource> Store<K> {
    /// Every object (a snapshot; order unspecified).
    pub fn state(&self) -> Vec<Arc<K>> {
        self.objects.read().unwrap().values().cloned().collect()
    }

    /// The object with this key, in O(1).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.objects.read().unwrap().get(key).cloned()
    }

    /// The namespaced object `ns/name` (or cluster-scoped `name` when `ns` is empty).
    pub fn get_in(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        if ns.is_empty() {
            self.get(name)
        } else {
            self.get(&format!("{ns}/{name}"))
        }
    }

    pub fn len(&self) -> usize {
        self.objects.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, obj: K) -> (Arc<K>, Option<Arc<K>>) {
        let obj = Arc::new(obj);
        let old = self
            .objects
            .write()
            .unwrap()
            .insert(key(obj.as_ref()), obj.clone());
        (obj, old)
    }

    fn remove(&self, obj: &K) -> Option<Arc<K>> {
        self.objects.write().unwrap().remove(&key(obj))
    }

    /// Replaces everything with a fresh list; returns what was there.
    fn replace(&self, objects: HashMap<String, Arc<K>>) -> HashMap<String, Arc<K>> {
        std::mem::replace(&mut *self.objects.write().unwrap(), objects)
    }
}

/// Something whose first list a controller waits for before its workers start.
pub trait HasSynced: Send + Sync {
    /// Resolves to true once the first list is in the store.
    fn synced_rx(&self) -> tokio::sync::watch::Receiver<bool>;
    /// What it holds, for upstream's "Waiting for caches to sync" logs.
    fn kind(&self) -> String;
}

pub struct Informer<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    pub store: Store<K>,
    handlers: Mutex<Vec<EventHandler<K>>>,
    api: Api<K>,
    config: watcher::Config,
    started: Mutex<bool>,
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
        Arc::new(Informer {
            store: Store::default(),
            handlers: Mutex::default(),
            api,
            config,
            started: Mutex::new(false),
            synced: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Registers a handler of every change. As client-go's informers do, a handler
    /// added after the informer started is first told about every object already in the
    /// store, so a controller set up late misses nothing.
    pub fn add_event_handler(&self, h: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let mut handlers = self.handlers.lock().unwrap();
        for obj in self.store.state() {
            h(Change::Added(&obj));
        }
        handlers.push(Box::new(h));
    }

    /// A handler that needs only the current object and whether it was deleted.
    pub fn add_handler(&self, h: impl Fn(&K, bool) + Send + Sync + 'static) {
        self.add_event_handler(move |c| h(c.object(), c.is_delete()));
    }

    fn notify(&self, change: Change<'_, K>) {
        for h in self.handlers.lock().unwrap().iter() {
            h(change);
        }
    }

    /// Starts the list+watch (once); handlers see every change after the store has it.
    pub fn run(self: &Arc<Self>) {
        {
            let mut started = self.started.lock().unwrap();
            if *started {
                return;
            }
            *started = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let stream = watcher::watcher(me.api.clone(), me.config.clone()).default_backoff();
            futures::pin_mut!(stream);
            // The objects of a list in progress (the first one, or a relist after the
            // watch could not resume).
            let mut listing: Option<HashMap<String, Arc<K>>> = None;
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(Event::Init) => listing = Some(HashMap::new()),
                    Ok(Event::InitApply(o)) => {
                        let o = Arc::new(o);
                        listing
                            .get_or_insert_with(HashMap::new)
                            .insert(key(o.as_ref()), o);
                    }
                    Ok(Event::InitDone) => {
                        let fresh = listing.take().unwrap_or_default();
                        me.relisted(fresh);
                        me.synced.send_replace(true);
                    }
                    Ok(Event::Apply(o)) => {
                        let (new, old) = me.store.insert(o);
                        match old {
                            Some(old) => me.notify(Change::Updated {
                                old: &old,
                                new: &new,
                            }),
                            None => me.notify(Change::Added(&new)),
                        }
                    }
                    Ok(Event::Delete(o)) => {
                        let seen = me.store.remove(&o);
                        me.notify(Change::Deleted(&o, seen.as_deref()));
                    }
                    Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
                }
            }
        });
    }

    /// A fresh list replaces the store.
    fn relisted(&self, fresh: HashMap<String, Arc<K>>) {
        relist(&self.store, fresh, |c| self.notify(c));
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
        // Never watched itself: the source feeds it.
        *me.started.lock().unwrap() = true;
        let target = me.clone();
        source.add_event_handler(move |change| match change {
            Change::Added(o) => {
                let (new, _) = target.store.insert(convert(o));
                target.notify(Change::Added(&new));
            }
            Change::Updated { old, new } => {
                let old = convert(old);
                let (new, _) = target.store.insert(convert(new));
                target.notify(Change::Updated {
                    old: &old,
                    new: &new,
                });
            }
            Change::Deleted(o, _) => {
                let o = convert(o);
                let seen = target.store.remove(&o);
                target.notify(Change::Deleted(&o, seen.as_deref()));
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

    /// Whether the first list has been stored.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }
}

impl<K> HasSynced for Informer<K>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default + Send + Sync,
{
    fn synced_rx(&self) -> tokio::sync::watch::Receiver<bool> {
        self.synced.subscribe()
    }

    fn kind(&self) -> String {
        K::kind(&K::DynamicType::default()).into_owned()
    }
}

impl<K> Clone for Change<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Change<'_, K> {}

/// Replaces the store's objects with a fresh list and tells `emit` what changed: objects
/// the list lacks are deleted with the state last seen, the rest are updates or additions.
fn relist<K: kube::Resource>(
    store: &Store<K>,
    fresh: HashMap<String, Arc<K>>,
    mut emit: impl FnMut(Change<'_, K>),
) {
    let mut old = store.replace(fresh.clone());
    for (k, new) in &fresh {
        match old.remove(k) {
            Some(prev) => emit(Change::Updated {
                old: &prev,
                new: new.as_ref(),
            }),
            None => emit(Change::Added(new)),
        }
    }
    for gone in old.values() {
        emit(Change::Deleted(gone, Some(gone)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = Some("ns".into());
        c.metadata.name = Some(name.into());
        c.metadata.resource_version = Some(rv.into());
        c
    }

    fn listed(objs: &[ConfigMap]) -> HashMap<String, Arc<ConfigMap>> {
        objs.iter().map(|o| (key(o), Arc::new(o.clone()))).collect()
    }

    /// What a relist tells handlers, as (kind, name, old rv, rv) sorted.
    fn changes(
        before: &[ConfigMap],
        after: &[ConfigMap],
    ) -> Vec<(&'static str, String, String, String)> {
        let store = Store::default();
        store.replace(listed(before));
        let mut seen = Vec::new();
        relist(&store, listed(after), |c| {
            let rv = |o: &ConfigMap| o.metadata.resource_version.clone().unwrap();
            let name = c.object().metadata.name.clone().unwrap();
            seen.push(match c {
                Change::Added(o) => ("added", name, String::new(), rv(o)),
                Change::Updated { old, new } => ("updated", name, rv(old), rv(new)),
                Change::Deleted(o, _) => ("deleted", name, String::new(), rv(o)),
            });
        });
        seen.sort();
        let mut now: Vec<_> = store.state().iter().map(|o| key(o.as_ref())).collect();
        now.sort();
        let mut want: Vec<_> = after.iter().map(key).collect();
        want.sort();
        assert_eq!(now, want, "the store holds the fresh list");
        seen
    }

    #[test]
    fn a_relist_reports_objects_gone_while_the_watch_was_down_with_their_last_state() {
        fn s(k: &'static str, n: &str, o: &str, r: &str) -> (&'static str, String, String, String) {
            (k, n.into(), o.into(), r.into())
        }
        // (before, after, what handlers hear)
        let cases = [
            (vec![], vec![cm("a", "1")], vec![s("added", "a", "", "1")]),
            (
                vec![cm("a", "1"), cm("b", "2")],
                vec![cm("a", "5")],
                vec![s("deleted", "b", "", "2"), s("updated", "a", "1", "5")],
            ),
            (
                vec![cm("a", "1")],
                vec![cm("a", "1"), cm("c", "7")],
                vec![s("added", "c", "", "7"), s("updated", "a", "1", "1")],
            ),
            (vec![cm("a", "3")], vec![], vec![s("deleted", "a", "", "3")]),
        ];
        for (before, after, want) in cases {
            assert_eq!(changes(&before, &after), want, "{before:?} -> {after:?}");
        }
    }

    #[test]
    fn the_store_gets_by_key() {
        let store = Store::default();
        store.insert(cm("a", "1"));
        assert_eq!(
            store
                .get("ns/a")
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("1")
        );
        assert!(store.get_in("ns", "a").is_some());
        assert!(store.get("ns/b").is_none());
        let (_, old) = store.insert(cm("a", "2"));
        assert_eq!(old.unwrap().metadata.resource_version.as_deref(), Some("1"));
        store.remove(&cm("a", "2"));
        assert!(store.is_empty());
    }
}

/// Against the real apiserver (in-process): a watch cut long enough for its resume point
/// to be compacted away makes the informer relist, and an object deleted meanwhile is
/// reported deleted with the state last seen (upstream's DeletedFinalStateUnknown).
#[cfg(test)]
mod watch_cut_tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};
    use std::time::{Duration, Instant};
    use test_utils::wait;
    use tokio::net::{TcpListener, TcpStream};

    /// A TCP relay to the apiserver whose connections the test can cut and refuse.
    struct Relay {
        port: u16,
        up: tokio::sync::watch::Sender<bool>,
    }

    impl Relay {
        async fn start(to: u16) -> Relay {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let up = tokio::sync::watch::Sender::new(true);
            let rx = up.subscribe();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    let mut rx = rx.clone();
                    if !*rx.borrow() {
                        continue; // refused: dropped at once
                    }
                    tokio::spawn(async move {
                        let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", to)).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream) => {}
                            _ = rx.wait_for(|up| !*up) => {}
                        }
                    });
                }
            });
            Relay { port, up }
        }

        fn set_up(&self, up: bool) {
            self.up.send_replace(up);
        }
    }

    /// How long a relist may take after the watch comes back (the watcher's back-off).
    const RELIST: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn deletion_during_a_cut_watch_is_reported_after_the_relist() {
        // No watch cache, frequent compaction: the resume revision is soon gone (410).
        let server = test_utils::apiserver::TestServer::start_with(|c| {
            c.watch_cache = false;
            c.etcd_compaction_interval = Duration::from_secs(1);
        });
        let direct = server.client();
        let ns = "informer-cut";
        let mut n = Namespace::default();
        n.metadata.name = Some(ns.into());
        Api::<Namespace>::all(direct.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(direct.clone(), ns);
        let mut doomed = ConfigMap::default();
        doomed.metadata.name = Some("doomed".into());
        doomed.data = Some([("state".to_string(), "last-seen".to_string())].into());
        let created = cms.create(&PostParams::default(), &doomed).await.unwrap();

        let relay = Relay::start(server.port).await;
        let through_relay = server.client_at(&format!("https://127.0.0.1:{}", relay.port));
        let informer = Informer::new(Api::<ConfigMap>::namespaced(through_relay, ns));
        // (change, name, the last state seen of a deletion)
        type Seen = Vec<(String, String, Option<String>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        {
            let seen = seen.clone();
            informer.add_event_handler(move |c| {
                let name = c.object().metadata.name.clone().unwrap_or_default();
                let entry = match c {
                    Change::Added(_) => ("added".to_string(), name, None),
                    Change::Updated { .. } => ("updated".into(), name, None),
                    Change::Deleted(_, last) => (
                        "deleted".into(),
                        name,
                        last.and_then(|o| o.data.as_ref()?.get("state").cloned()),
                    ),
                };
                seen.lock().unwrap().push(entry);
            });
        }
        informer.run();
        informer.synced().await;
        assert!(informer.store.get_in(ns, "doomed").is_some());

        // Cut the watch; delete, write something else, and wait until the revision the
        // informer would resume from is compacted.
        relay.set_up(false);
        let resume = created.metadata.resource_version.clone().unwrap();
        cms.delete("doomed", &DeleteParams::default())
            .await
            .unwrap();
        let mut other = ConfigMap::default();
        other.metadata.name = Some("born-during-the-cut".into());
        cms.create(&PostParams::default(), &other).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let expired = match cms.watch(&WatchParams::default().timeout(1), &resume).await {
                Ok(s) => matches!(
                    Box::pin(s).next().await,
                    Some(Ok(WatchEvent::Error(e))) if e.code == 410
                ),
                Err(kube::Error::Api(e)) => e.code == 410,
                Err(_) => false,
            };
            if expired {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "revision {resume} never compacted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        relay.set_up(true);

        let deleted = wait("the deletion after the relist", RELIST, || {
            seen.lock()
                .unwrap()
                .iter()
                .find(|(kind, name, _)| kind == "deleted" && name == "doomed")
                .cloned()
        })
        .await;
        assert_eq!(
            deleted.2.as_deref(),
            Some("last-seen"),
            "the last state seen"
        );
        wait("the object created during the cut", RELIST, || {
            informer.store.get_in(ns, "born-during-the-cut")
        })
        .await;
        assert!(informer.store.get_in(ns, "doomed").is_none());
        // The informer's watch would hold the server's graceful shutdown open.
        relay.set_up(false);
    }
}
