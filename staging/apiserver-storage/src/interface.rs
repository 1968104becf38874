//! The key-value contract both storage backends implement (the subset of etcd v3 the
//! apiserver needs): single-key compare-and-swap writes, ranges at a revision, watches
//! from a revision, compaction. Revisions are global and strictly increasing.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For a delete, `kv.value` is empty, `kv.mod_revision` is the deletion's
/// revision and `prev` holds the last value.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("key not found")]
    NotFound,
    #[error("key already exists")]
    AlreadyExists,
    /// A compare-and-swap lost; carries what is stored now (None if deleted).
    #[error("revision mismatch")]
    Conflict(Option<KeyValue>),
    #[error("required revision {requested} has been compacted (compacted at {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("required revision {0} is a future revision")]
    FutureRevision(i64),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Debug, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// More keys exist in the range beyond `limit`.
    pub more: bool,
    /// Keys in `[start, end of prefix)` at `revision`, including the returned ones.
    pub count: i64,
    /// The revision the range was read at.
    pub revision: i64,
}

/// A step of a watch: the events under the prefix (maybe none) and the revision the
/// store has reached, so a watcher learns of progress made by writes to other keys.
#[derive(Clone, Debug, Default)]
pub struct WatchBatch {
    pub events: Vec<Event>,
    pub revision: i64,
}

/// Batches of one watch, in revision order. An `Err` ends the stream.
pub type WatchReceiver = mpsc::UnboundedReceiver<Result<WatchBatch>>;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Reads one key at the current revision; also returns that revision.
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, i64)>;
    /// Keys `>= start` that begin with `prefix`, at `revision` (0 = current).
    async fn range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: i64,
    ) -> Result<RangeResult>;
    /// Writes a key that must not exist; returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<i64>;
    /// Overwrites a key whose `mod_revision` is `expected`; returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: i64) -> Result<i64>;
    /// Deletes a key whose `mod_revision` is `expected`; returns the revision and the last value.
    async fn delete(&self, key: &str, expected: i64) -> Result<(i64, KeyValue)>;
    /// Streams changes under `prefix` with revision `>= from` (0 = from now on).
    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchReceiver>;
    /// Asks every open watch to report the revision the store has reached soon, rather
    /// than at its next periodic progress report (a reader waits for it).
    fn request_progress(&self) {}
    /// Discards history before `revision`.
    async fn compact(&self, revision: i64) -> Result<()>;
    async fn current_revision(&self) -> Result<i64>;
    /// Live keys under `prefix`.
    async fn count(&self, prefix: &str) -> Result<i64>;
    /// Learns that `group`/`resource` is stored under `prefix` (for per-resource value
    /// transformation such as encryption at rest).
    fn register_resource(&self, _prefix: &str, _group: &str, _resource: &str) {}
}
