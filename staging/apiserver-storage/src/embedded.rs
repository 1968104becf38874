//! The embedded single-node store used when no `--etcd-servers` is given.
//!
//! State lives in memory as an MVCC map (every key's versions since the last compaction,
//! plus the event log for watches); durability comes from a redb file holding the latest
//! value of every key and the global revision. One writer thread applies writes in
//! batches: it checks each compare-and-swap, commits the batch in one fsynced redb
//! transaction, and only then makes it visible to readers and watchers, so an
//! acknowledged write survives `kill -9` and nothing unacknowledged is ever read.
//! After a restart history starts at the stored revision (older watches get `Compacted`).

use super::interface::*;
use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

#[derive(Clone, Debug)]
struct Version {
    mod_revision: i64,
    create_revision: i64,
    /// `None` marks a deletion.
    value: Option<Bytes>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Result<WatchBatch>>,
}

#[derive(Default)]
struct State {
    revision: i64,
    compacted: i64,
    keys: BTreeMap<String, Vec<Version>>,
    /// Every event since `compacted`, by revision.
    log: BTreeMap<i64, Event>,
    watchers: Vec<Watcher>,
}

impl State {
    fn latest(&self, key: &str) -> Option<KeyValue> {
        self.at(key, self.keys.get(key)?, i64::MAX)
    }

    fn at(&self, key: &str, versions: &[Version], revision: i64) -> Option<KeyValue> {
        let v = versions.iter().rev().find(|v| v.mod_revision <= revision)?;
        Some(KeyValue {
            key: key.to_string(),
            value: v.value.clone()?,
            create_revision: v.create_revision,
            mod_revision: v.mod_revision,
        })
    }

    /// Makes a committed batch visible and tells every watcher (progress included).
    fn apply(&mut self, events: Vec<Event>) {
        for ev in &events {
            let version = Version {
                mod_revision: ev.kv.mod_revision,
                create_revision: ev.kv.create_revision,
                value: (ev.kind == EventKind::Put).then(|| ev.kv.value.clone()),
            };
            self.keys
                .entry(ev.kv.key.clone())
                .or_default()
                .push(version);
            self.revision = ev.kv.mod_revision;
        }
        let revision = self.revision;
        self.watchers.retain(|w| {
            let mine: Vec<Event> = events
                .iter()
                .filter(|e| e.kv.key.starts_with(&w.prefix))
                .cloned()
                .collect();
            w.tx.send(Ok(WatchBatch {
                events: mine,
                revision,
            }))
            .is_ok()
        });
        for ev in events {
            self.log.insert(ev.kv.mod_revision, ev);
        }
    }

    fn compact(&mut self, revision: i64) {
        if revision <= self.compacted {
            return;
        }
        self.keys.retain(|_, versions| {
            // Keep the newest version at or before `revision` (readers at `revision` need
            // it) unless it is a deletion, and everything after it.
            let keep_from = versions
                .iter()
                .rposition(|v| v.mod_revision <= revision)
                .unwrap_or(0);
            versions.drain(..keep_from);
            if versions
                .first()
                .is_some_and(|v| v.value.is_none() && v.mod_revision <= revision)
            {
                versions.remove(0);
            }
            !versions.is_empty()
        });
        self.log = self.log.split_off(&revision);
        self.compacted = revision;
    }
}

enum Op {
    Create {
        key: String,
        value: Bytes,
        reply: oneshot::Sender<Result<i64>>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: i64,
        reply: oneshot::Sender<Result<i64>>,
    },
    Delete {
        key: String,
        expected: i64,
        reply: oneshot::Sender<Result<(i64, KeyValue)>>,
    },
}

pub struct EmbeddedBackend {
    state: Arc<RwLock<State>>,
    /// Taken on drop so the writer thread sees the channel close.
    ops: Option<std::sync::mpsc::Sender<Op>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedBackend {
    /// Opens (or creates) the store under `dir`, loading every key into memory.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("creating {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("state.redb"))
            .map_err(|e| unavailable(format!("opening store: {e}")))?;
        let mut state = State::default();
        {
            let w = db.begin_write().map_err(unavailable)?;
            w.open_table(KV).map_err(unavailable)?;
            w.open_table(META).map_err(unavailable)?;
            w.commit().map_err(unavailable)?;
            let r = db.begin_read().map_err(unavailable)?;
            let meta = r.open_table(META).map_err(unavailable)?;
            state.revision = meta
                .get("revision")
                .map_err(unavailable)?
                .map(|v| v.value())
                .unwrap_or(1);
            state.compacted = state.revision;
            let kv = r.open_table(KV).map_err(unavailable)?;
            for row in kv.iter().map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                let (create_revision, mod_revision, value) = decode_record(v.value());
                state.keys.insert(
                    k.value().to_string(),
                    vec![Version {
                        mod_revision,
                        create_revision,
                        value: Some(value),
                    }],
                );
            }
        }
        let state = Arc::new(RwLock::new(state));
        let (tx, rx) = std::sync::mpsc::channel();
        let writer_state = state.clone();
        let writer = std::thread::Builder::new()
            .name("embedded-store-writer".into())
            .spawn(move || writer_loop(rx, writer_state, db))
            .map_err(unavailable)?;
        Ok(Self {
            state,
            ops: Some(tx),
            writer: Some(writer),
        })
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Op,
    ) -> oneshot::Receiver<Result<T>> {
        let (tx, rx) = oneshot::channel();
        // The writer thread lives as long as `self`; a send error means it died.
        if let Some(ops) = &self.ops {
            let _ = ops.send(make(tx));
        }
        rx
    }
}

fn encode_record(create: i64, modr: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modr.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_record(b: &[u8]) -> (i64, i64, Bytes) {
    let create = i64::from_le_bytes(b[0..8].try_into().unwrap());
    let modr = i64::from_le_bytes(b[8..16].try_into().unwrap());
    (create, modr, Bytes::copy_from_slice(&b[16..]))
}

/// What a batch has written to a key so far (`None` = deleted in this batch).
type Pending = HashMap<String, Option<(i64, i64)>>;

fn writer_loop(rx: std::sync::mpsc::Receiver<Op>, state: Arc<RwLock<State>>, db: Database) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 512 {
                break;
            }
        }
        commit_batch(batch, &state, &db);
    }
}

enum Outcome {
    Created(oneshot::Sender<Result<i64>>, i64),
    Updated(oneshot::Sender<Result<i64>>, i64),
    Deleted(oneshot::Sender<Result<(i64, KeyValue)>>, i64, KeyValue),
}

fn commit_batch(batch: Vec<Op>, state: &RwLock<State>, db: &Database) {
    let mut events = Vec::new();
    let mut outcomes = Vec::new();
    let mut pending: Pending = HashMap::new();
    {
        let st = state.read().unwrap();
        let mut rev = st.revision;
        // (create_revision, mod_revision) of the key as the batch sees it.
        let current = |pending: &Pending, key: &str| -> Option<(i64, i64)> {
            match pending.get(key) {
                Some(p) => *p,
                None => st
                    .latest(key)
                    .map(|kv| (kv.create_revision, kv.mod_revision)),
            }
        };
        let lookup_prev = |events: &Vec<Event>, key: &str| -> Option<KeyValue> {
            events
                .iter()
                .rev()
                .find(|e| e.kv.key == key)
                .map(|e| {
                    if e.kind == EventKind::Put {
                        Some(e.kv.clone())
                    } else {
                        None
                    }
                })
                .unwrap_or_else(|| st.latest(key))
        };
        for op in batch {
            match op {
                Op::Create { key, value, reply } => {
                    if current(&pending, &key).is_some() {
                        let _ = reply.send(Err(StoreError::AlreadyExists));
                        continue;
                    }
                    rev += 1;
                    pending.insert(key.clone(), Some((rev, rev)));
                    events.push(Event {
                        kind: EventKind::Put,
                        kv: KeyValue {
                            key,
                            value,
                            create_revision: rev,
                            mod_revision: rev,
                        },
                        prev: None,
                    });
                    outcomes.push(Outcome::Created(reply, rev));
                }
                Op::Update {
                    key,
                    value,
                    expected,
                    reply,
                } => match current(&pending, &key) {
                    Some((c, m)) if m == expected => {
                        let prev = lookup_prev(&events, &key);
                        rev += 1;
                        pending.insert(key.clone(), Some((c, rev)));
                        events.push(Event {
                            kind: EventKind::Put,
                            kv: KeyValue {
                                key,
                                value,
                                create_revision: c,
                                mod_revision: rev,
                            },
                            prev,
                        });
                        outcomes.push(Outcome::Updated(reply, rev));
                    }
                    Some(_) => {
                        let _ = reply.send(Err(StoreError::Conflict(lookup_prev(&events, &key))));
                    }
                    None => {
                        let _ = reply.send(Err(StoreError::NotFound));
                    }
                },
                Op::Delete {
                    key,
                    expected,
                    reply,
                } => match current(&pending, &key) {
                    Some((c, m)) if m == expected || expected == 0 => {
                        let prev = lookup_prev(&events, &key).expect("live key has a value");
                        rev += 1;
                        pending.insert(key.clone(), None);
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key,
                                value: Bytes::new(),
                                create_revision: c,
                                mod_revision: rev,
                            },
                            prev: Some(prev.clone()),
                        });
                        outcomes.push(Outcome::Deleted(reply, rev, prev));
                    }
                    Some(_) => {
                        let _ = reply.send(Err(StoreError::Conflict(lookup_prev(&events, &key))));
                    }
                    None => {
                        let _ = reply.send(Err(StoreError::NotFound));
                    }
                },
            }
        }
    }
    if events.is_empty() {
        return;
    }
    if let Err(e) = persist(db, &events) {
        let err = StoreError::Unavailable(e);
        for o in outcomes {
            match o {
                Outcome::Created(r, _) | Outcome::Updated(r, _) => drop(r.send(Err(err.clone()))),
                Outcome::Deleted(r, _, _) => drop(r.send(Err(err.clone()))),
            }
        }
        return;
    }
    {
        state.write().unwrap().apply(events);
    }
    for o in outcomes {
        match o {
            Outcome::Created(r, rev) | Outcome::Updated(r, rev) => drop(r.send(Ok(rev))),
            Outcome::Deleted(r, rev, prev) => drop(r.send(Ok((rev, prev)))),
        }
    }
}

fn persist(db: &Database, events: &[Event]) -> std::result::Result<(), String> {
    let w = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut kv = w.open_table(KV).map_err(|e| e.to_string())?;
        for ev in events {
            match ev.kind {
                EventKind::Put => {
                    let rec =
                        encode_record(ev.kv.create_revision, ev.kv.mod_revision, &ev.kv.value);
                    kv.insert(ev.kv.key.as_str(), rec.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                EventKind::Delete => {
                    kv.remove(ev.kv.key.as_str()).map_err(|e| e.to_string())?;
                }
            }
        }
        let mut meta = w.open_table(META).map_err(|e| e.to_string())?;
        let last = events.last().map(|e| e.kv.mod_revision).unwrap_or_default();
        meta.insert("revision", last).map_err(|e| e.to_string())?;
    }
    w.commit().map_err(|e| e.to_string())
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn closed() -> StoreError {
    StoreError::Unavailable("embedded store writer stopped".into())
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, i64)> {
        let st = self.state.read().unwrap();
        Ok((st.latest(key), st.revision))
    }

    async fn range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: i64,
    ) -> Result<RangeResult> {
        let st = self.state.read().unwrap();
        let revision = if revision == 0 { st.revision } else { revision };
        if revision < st.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: st.compacted,
            });
        }
        if revision > st.revision {
            return Err(StoreError::FutureRevision(revision));
        }
        let from = if start.is_empty() { prefix } else { start };
        let mut out = RangeResult {
            revision,
            ..Default::default()
        };
        for (k, versions) in st
            .keys
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
        {
            if !k.starts_with(prefix) {
                break;
            }
            if let Some(kv) = st.at(k, versions, revision) {
                out.count += 1;
                if limit > 0 && out.kvs.len() >= limit {
                    out.more = true;
                } else {
                    out.kvs.push(kv);
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        self.submit(|reply| Op::Create {
            key: key.into(),
            value,
            reply,
        })
        .await
        .unwrap_or_else(|_| Err(closed()))
    }

    async fn update(&self, key: &str, value: Bytes, expected: i64) -> Result<i64> {
        self.submit(|reply| Op::Update {
            key: key.into(),
            value,
            expected,
            reply,
        })
        .await
        .unwrap_or_else(|_| Err(closed()))
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<(i64, KeyValue)> {
        self.submit(|reply| Op::Delete {
            key: key.into(),
            expected,
            reply,
        })
        .await
        .unwrap_or_else(|_| Err(closed()))
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchReceiver> {
        let mut st = self.state.write().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        if from > 0 {
            if from < st.compacted {
                return Err(StoreError::Compacted {
                    requested: from,
                    compacted: st.compacted,
                });
            }
            let backlog: Vec<Event> = st
                .log
                .range(from..)
                .map(|(_, e)| e)
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned()
                .collect();
            let _ = tx.send(Ok(WatchBatch {
                events: backlog,
                revision: st.revision,
            }));
        }
        st.watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
        });
        Ok(rx)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let mut st = self.state.write().unwrap();
        if revision > st.revision {
            return Err(StoreError::FutureRevision(revision));
        }
        st.compact(revision);
        Ok(())
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.state.read().unwrap().revision)
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let st = self.state.read().unwrap();
        let n = st
            .keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.last().is_some_and(|v| v.value.is_some()))
            .count();
        Ok(n as i64)
    }
}

impl Drop for EmbeddedBackend {
    /// Closes the write queue and waits for the writer, which releases the file lock.
    fn drop(&mut self) {
        self.ops.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
