//! Watch streams (upstream `endpoints/handlers/watch.go`): newline-delimited JSON events
//! `{"type":...,"object":...}` over a chunked response, from the watch cache or straight
//! from storage, with bookmarks, `timeoutSeconds`, and expired resourceVersions reported
//! as an ERROR event carrying a 410 Status.

use super::handlers::ApiResource;
use super::negotiation::{Body, Format};
use super::table;
use crate::registry::generic::Registry;
use crate::registry::options::ListOptions;
use crate::storage::cacher::{CacheWatch, CachedObject, Filter, WatchItem, WatchType};
use crate::storage::store::{ReadAt, decode, parse_rv};
use apimachinery::StatusError;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Upstream's `--min-request-timeout`: watches without `timeoutSeconds` last between
/// this and twice this.
const MIN_REQUEST_TIMEOUT: u64 = 1800;
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

pub async fn serve(
    res: Arc<ApiResource>,
    ns: Option<&str>,
    opts: ListOptions,
    format: Format,
) -> Result<Response<Body>, StatusError> {
    let reg = res.registry.clone();
    let filter = reg.filter(ns, &opts)?;
    let from = opts.resource_version.as_deref().map(parse_rv).transpose()?;
    let initial_events = opts.send_initial_events.unwrap_or(false);
    let started = match &reg.cacher {
        Some(c) => c.watch(filter.clone(), from, initial_events).await,
        None => storage_watch(&reg, filter.clone(), from, initial_events).await,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or_else(|| {
        let jitter = uuid::Uuid::new_v4().as_u128() as u64 % MIN_REQUEST_TIMEOUT;
        MIN_REQUEST_TIMEOUT + jitter
    }));
    let ri = res.info().clone();
    match started {
        Ok(w) => {
            let enc = Encoder {
                res: res.clone(),
                format,
                kind: ri.gvk.kind.clone(),
                api_version: ri.gvk.api_version(),
            };
            tokio::spawn(pump(
                w,
                enc,
                tx,
                timeout,
                opts.allow_bookmarks,
                initial_events,
            ));
        }
        // Upstream answers an expired resourceVersion with 200 and a single ERROR event.
        Err(e) if e.code == 410 => {
            let frame = json!({"type": "ERROR", "object": e.to_status()});
            let _ = tx.try_send(Bytes::from(format!("{frame}\n")));
        }
        Err(e) => return Err(e),
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    let content_type = "application/json";
    Ok(Response::builder()
        .status(200)
        .header("Content-Type", content_type)
        .header("Cache-Control", "no-cache, private")
        .header("Transfer-Encoding", "chunked")
        .body(body)
        .unwrap())
}

struct Encoder {
    res: Arc<ApiResource>,
    format: Format,
    kind: String,
    api_version: String,
}

impl Encoder {
    fn event(&self, t: &str, obj: &CachedObject) -> Bytes {
        match &self.format {
            Format::Table { include_object } => {
                let meta = json!({"resourceVersion": obj.value["metadata"]["resourceVersion"]});
                let table = self
                    .res
                    .table(std::iter::once(&obj.value), meta, include_object);
                Bytes::from(format!("{}\n", json!({"type": t, "object": table})))
            }
            Format::PartialObjectMetadata { .. } => Bytes::from(format!(
                "{}\n",
                json!({"type": t, "object": table::partial_object_metadata(&obj.value)})
            )),
            _ if self.res.view.is_some() => Bytes::from(format!(
                "{}\n",
                json!({"type": t, "object": self.res.out(&obj.value)})
            )),
            // The object's encoding is shared by every watcher; only the envelope is new.
            _ => {
                let mut b = Vec::with_capacity(obj.bytes.len() + 32);
                b.extend_from_slice(b"{\"type\":\"");
                b.extend_from_slice(t.as_bytes());
                b.extend_from_slice(b"\",\"object\":");
                b.extend_from_slice(&obj.bytes);
                b.extend_from_slice(b"}\n");
                Bytes::from(b)
            }
        }
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta});
        Bytes::from(format!("{}\n", json!({"type": "BOOKMARK", "object": obj})))
    }
}

async fn pump(
    w: CacheWatch,
    enc: Encoder,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
    bookmarks: bool,
    initial_events: bool,
) {
    let CacheWatch {
        initial,
        mut rx,
        rv,
    } = w;
    let mut last_rv = rv;
    for item in initial {
        last_rv = last_rv.max(item.obj.rv);
        if tx
            .send(enc.event(item.kind.as_str(), &item.obj))
            .await
            .is_err()
        {
            return;
        }
    }
    if initial_events && bookmarks && tx.send(enc.bookmark(rv.max(last_rv), true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(Err(e)) => {
                    let _ = tx.send(Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": e.to_status()})))).await;
                    return;
                }
                Some(Ok(WatchItem { kind, obj })) => {
                    last_rv = last_rv.max(obj.rv);
                    if tx.send(enc.event(kind.as_str(), &obj)).await.is_err() {
                        return;
                    }
                }
                // The cache dropped this watcher (too slow, or relisted): end the stream so
                // the client re-watches from its last resourceVersion.
                None => return,
            },
            _ = tick.tick(), if bookmarks => {
                let current = enc.res.registry.cacher.as_ref().map(|c| c.current_rv()).unwrap_or(last_rv).max(last_rv);
                if tx.send(enc.bookmark(current, false)).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = tx.closed() => return,
        }
    }
}

/// A watch served from storage (`--watch-cache=false`): list for the starting state
/// when needed, then storage events classified against the filter.
async fn storage_watch(
    reg: &Arc<Registry>,
    filter: Filter,
    from: Option<i64>,
    initial_events: bool,
) -> Result<CacheWatch, StatusError> {
    let mut initial = Vec::new();
    let start = match from {
        Some(n) if n > 0 && !initial_events => n,
        _ => {
            let keep = reg.kv_filter(&filter);
            let page = reg
                .store
                .list(&filter.prefix, ReadAt::Latest, 0, None, &keep, true)
                .await?;
            for kv in &page.items {
                let obj =
                    CachedObject::new(kv.key.clone(), kv.mod_revision, decode(kv)?, &reg.fields);
                initial.push(WatchItem {
                    kind: WatchType::Added,
                    obj: Arc::new(obj),
                });
            }
            page.revision
        }
    };
    let mut events = reg.store.watch(&filter.prefix, start).await?;
    let (tx, rx) = mpsc::channel(1000);
    let fields = reg.fields.clone();
    tokio::spawn(async move {
        while let Some(batch) = events.recv().await {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            for ev in batch.events {
                let d = match ev.decode() {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let convert = |v: Value| {
                    Arc::new(CachedObject::new(
                        ev.kv.key.clone(),
                        ev.kv.mod_revision,
                        v,
                        &fields,
                    ))
                };
                let (obj, prev, created) = (convert(d.obj), d.prev.map(convert), d.created);
                if let Some(kind) = filter.classify(ev.kind, created, &obj, prev.as_deref())
                    && tx.send(Ok(WatchItem { kind, obj })).await.is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(CacheWatch {
        initial,
        rx,
        rv: start,
    })
}
