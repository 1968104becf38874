//! Object storage for one resource (upstream `storage.Interface` as used by the generic
//! registry): JSON objects under `<prefix>/<resource>/[<namespace>/]<name>`, with
//! `metadata.resourceVersion` taken from the backend's mod revision and never stored.

use super::interface::{Backend, EventKind, KeyValue, StoreError};
use crate::metrics::observe_storage;
use apimachinery::{GroupResource, StatusError};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// How a list chooses the revision it reads (upstream `resourceVersion` + `resourceVersionMatch`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReadAt {
    /// Unset: the newest data (a consistent read).
    #[default]
    Latest,
    /// Exactly this revision (`resourceVersionMatch=Exact`, or a continue token).
    Exact(i64),
}

pub struct ListPage {
    /// Raw items in key order, each with `metadata.resourceVersion` set.
    pub items: Vec<KeyValue>,
    pub revision: i64,
    /// The next page's token, when more items exist.
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

pub struct StoreEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

/// A storage event as objects: what it leaves behind and what was there before.
pub struct DecodedEvent {
    /// For a deletion, the last state with the deletion's revision, as upstream reports it.
    pub obj: Value,
    pub prev: Option<Value>,
    /// The put created the key (its create and mod revisions are equal).
    pub created: bool,
}

impl StoreEvent {
    /// Decodes the event; `None` for a deletion whose last value is unknown.
    pub fn decode(&self) -> Result<Option<DecodedEvent>, StatusError> {
        match self.kind {
            EventKind::Put => Ok(Some(DecodedEvent {
                obj: decode(&self.kv)?,
                prev: self.prev.as_ref().map(decode).transpose()?,
                created: self.kv.create_revision == self.kv.mod_revision,
            })),
            EventKind::Delete => {
                let Some(p) = &self.prev else { return Ok(None) };
                let prev = decode(p)?;
                let mut last = prev.clone();
                set_resource_version(&mut last, self.kv.mod_revision);
                Ok(Some(DecodedEvent {
                    obj: last,
                    prev: Some(prev),
                    created: false,
                }))
            }
        }
    }
}

/// Events under a resource's prefix plus the revision the store reached.
pub struct StoreBatch {
    pub events: Vec<StoreEvent>,
    pub revision: i64,
}

/// A resource's storage: the backend plus the key prefix and the resource's identity for errors.
#[derive(Clone)]
pub struct ResourceStore {
    pub backend: Arc<dyn Backend>,
    /// Key prefix ending in `/`, e.g. `/registry/services/specs/`.
    pub prefix: String,
    pub resource: GroupResource,
    /// `--storage-media-type`: whether built-in objects are written as protobuf
    /// (upstream's default, so that an upstream apiserver can take over the same etcd) or
    /// as JSON. Reads accept both, whatever this says.
    pub protobuf: bool,
}

/// A stored object (JSON, or protobuf as upstream writes it) with its `resourceVersion`.
pub fn decode(kv: &KeyValue) -> Result<Value, StatusError> {
    let bad = |e: String| StatusError::internal(format!("decoding stored object {}: {e}", kv.key));
    let mut v: Value = if kv.value.starts_with(apimachinery::protobuf::MAGIC) {
        apimachinery::protobuf::decode_object(&kv.value).map_err(|e| bad(e.to_string()))?
    } else {
        serde_json::from_slice(&kv.value).map_err(|e| bad(e.to_string()))?
    };
    set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

pub fn set_resource_version(v: &mut Value, rev: i64) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// Stored form: the object without its resourceVersion (upstream clears it too), as
/// protobuf when asked for and the kind has a protobuf form, else JSON.
pub fn encode(obj: &Value, protobuf: bool) -> Bytes {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    if protobuf
        && apimachinery::protobuf::can_encode(&obj)
        && let Ok(b) = apimachinery::protobuf::encode_object(&obj)
    {
        return Bytes::from(b);
    }
    Bytes::from(serde_json::to_vec(&obj).expect("JSON values always serialize"))
}

/// Parses a resourceVersion string as a revision (upstream: 400 on garbage).
pub fn parse_rv(rv: &str) -> Result<i64, StatusError> {
    rv.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| StatusError::bad_request(format!("invalid resource version: {rv:?}")))
}

impl ResourceStore {
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("{}{ns}/{name}", self.prefix),
            None => format!("{}{name}", self.prefix),
        }
    }

    /// The key prefix of a list: one namespace or all of them.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{}{ns}/", self.prefix),
            None => self.prefix.clone(),
        }
    }

    pub fn name_of(&self, key: &str) -> String {
        key.rsplit('/').next().unwrap_or_default().to_string()
    }

    pub fn map_err(&self, e: StoreError, name: &str) -> StatusError {
        match e {
            StoreError::NotFound => StatusError::not_found(&self.resource, name),
            StoreError::AlreadyExists => StatusError::already_exists(&self.resource, name),
            StoreError::Conflict(_) => StatusError::stale(&self.resource, name),
            StoreError::Compacted {
                requested,
                compacted,
            } => StatusError::expired(format!(
                "The resourceVersion for the provided list is too old. (requested {requested}, compacted {compacted})"
            )),
            StoreError::FutureRevision(rev) => {
                StatusError::timeout(format!("Too large resource version: {rev}"), 1)
            }
            StoreError::Unavailable(msg) => StatusError::internal(msg),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, StatusError> {
        let name = self.name_of(key);
        let t = Instant::now();
        let r = self.backend.get(key).await;
        observe_storage("get", &self.resource, t);
        r.map(|(kv, _)| kv).map_err(|e| self.map_err(e, &name))
    }

    pub async fn create(&self, key: &str, obj: &Value) -> Result<i64, StatusError> {
        let name = self.name_of(key);
        let t = Instant::now();
        let r = self.backend.create(key, encode(obj, self.protobuf)).await;
        observe_storage("create", &self.resource, t);
        r.map_err(|e| self.map_err(e, &name))
    }

    /// Compare-and-swap on the mod revision the caller read.
    pub async fn update(&self, key: &str, obj: &Value, expected: i64) -> Result<i64, StatusError> {
        let name = self.name_of(key);
        let t = Instant::now();
        let r = self
            .backend
            .update(key, encode(obj, self.protobuf), expected)
            .await;
        observe_storage("update", &self.resource, t);
        r.map_err(|e| self.map_err(e, &name))
    }

    /// Compare-and-swap that hands back, on a conflict, what the key holds now (None when
    /// it is gone), so the caller retries without reading it again.
    pub async fn update_or_current(
        &self,
        key: &str,
        obj: &Value,
        expected: i64,
    ) -> Result<Result<i64, Option<KeyValue>>, StatusError> {
        let t = Instant::now();
        let r = self
            .backend
            .update(key, encode(obj, self.protobuf), expected)
            .await;
        observe_storage("update", &self.resource, t);
        match r {
            Ok(rev) => Ok(Ok(rev)),
            Err(StoreError::Conflict(cur)) => Ok(Err(cur)),
            Err(StoreError::NotFound) => Ok(Err(None)),
            Err(e) => Err(self.map_err(e, &self.name_of(key))),
        }
    }

    /// Delete at a mod revision; on a conflict, what the key holds now (None when gone).
    pub async fn delete_or_current(
        &self,
        key: &str,
        expected: i64,
    ) -> Result<Result<i64, Option<KeyValue>>, StatusError> {
        let t = Instant::now();
        let r = self.backend.delete(key, expected).await;
        observe_storage("delete", &self.resource, t);
        match r {
            Ok((rev, _)) => Ok(Ok(rev)),
            Err(StoreError::Conflict(cur)) => Ok(Err(cur)),
            Err(StoreError::NotFound) => Ok(Err(None)),
            Err(e) => Err(self.map_err(e, &self.name_of(key))),
        }
    }

    pub async fn delete(&self, key: &str, expected: i64) -> Result<(i64, KeyValue), StatusError> {
        let name = self.name_of(key);
        let t = Instant::now();
        let r = self.backend.delete(key, expected).await;
        observe_storage("delete", &self.resource, t);
        r.map_err(|e| self.map_err(e, &name))
    }

    /// One page of a list. `filter` decides which raw items count towards `limit`;
    /// like upstream, the store keeps reading until the page is full or the range ends.
    pub async fn list(
        &self,
        prefix: &str,
        at: ReadAt,
        limit: usize,
        continue_token: Option<&str>,
        filter: &(dyn Fn(&KeyValue) -> bool + Sync),
        filtered: bool,
    ) -> Result<ListPage, StatusError> {
        let (mut revision, mut start) = match continue_token {
            Some(tok) => {
                let (rev, start) = decode_continue(tok, prefix)?;
                (rev, start)
            }
            None => (if let ReadAt::Exact(r) = at { r } else { 0 }, String::new()),
        };
        let mut items = Vec::new();
        loop {
            let want = if limit == 0 { 0 } else { limit - items.len() };
            let t = Instant::now();
            let page = self.backend.range(prefix, &start, want, revision).await;
            observe_storage("list", &self.resource, t);
            let page = page.map_err(|e| match e {
                StoreError::Compacted { .. } if continue_token.is_some() => StatusError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => self.map_err(other, ""),
            })?;
            revision = page.revision;
            let last_key = page.kvs.last().map(|kv| kv.key.clone());
            let read = page.kvs.len() as i64;
            for kv in page.kvs {
                if filter(&kv) {
                    items.push(kv);
                }
            }
            let full = limit > 0 && items.len() >= limit;
            if !page.more || last_key.is_none() {
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            start = format!("{}\0", last_key.unwrap());
            if full {
                let remaining = (!filtered).then_some(page.count - read);
                let token = encode_continue(revision, &start, prefix);
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token: Some(token),
                    remaining,
                });
            }
        }
    }

    /// Watches keys under `prefix` from revision `from` (exclusive, like a resourceVersion).
    pub async fn watch(
        &self,
        prefix: &str,
        from: i64,
    ) -> Result<mpsc::UnboundedReceiver<Result<StoreBatch, StatusError>>, StatusError> {
        let start = if from > 0 { from + 1 } else { 0 };
        let mut rx = self
            .backend
            .watch(prefix, start)
            .await
            .map_err(|e| match e {
                StoreError::Compacted { compacted, .. } => too_old(from, compacted),
                other => self.map_err(other, ""),
            })?;
        let (tx, out) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let mapped = batch
                    .map(|b| StoreBatch {
                        events: b
                            .events
                            .into_iter()
                            .map(|e| StoreEvent {
                                kind: e.kind,
                                kv: e.kv,
                                prev: e.prev,
                            })
                            .collect(),
                        revision: b.revision,
                    })
                    .map_err(|e| match e {
                        StoreError::Compacted { compacted, .. } => too_old(from, compacted),
                        other => StatusError::internal(other.to_string()),
                    });
                let stop = mapped.is_err();
                if tx.send(mapped).is_err() || stop {
                    return;
                }
            }
        });
        Ok(out)
    }
}

/// The error of a watch whose start is older than retained history (upstream wording).
pub fn too_old(requested: i64, oldest: i64) -> StatusError {
    StatusError::expired(format!("too old resource version: {requested} ({oldest})"))
}

/// Continue tokens as upstream encodes them: base64 of
/// `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key after the prefix>"}`.
pub fn encode_continue(rev: i64, start_key: &str, prefix: &str) -> String {
    let rel = start_key.strip_prefix(prefix).unwrap_or(start_key);
    let body = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": rel});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

fn decode_continue(tok: &str, prefix: &str) -> Result<(i64, String), StatusError> {
    let bad = || {
        StatusError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(tok)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(tok))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rev = v["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rev, format!("{prefix}{start}")))
}
