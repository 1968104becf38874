//! Watch streams (upstream `endpoints/handlers/watch.go`): newline-delimited JSON events
//! `{"type":...,"object":...}` (or length-prefixed protobuf `WatchEvent`s) over a chunked
//! response, from the watch cache or straight from storage, with bookmarks,
//! `timeoutSeconds`, and expired resourceVersions reported as an ERROR event carrying a
//! 410 Status.

use super::handlers::ApiResource;
use super::negotiation::{Body, Format};
use super::table;
use crate::registry::options::ListOptions;
use crate::storage::cacher::{CacheWatch, CachedObject, WatchItem};
use crate::storage::store::parse_rv;
use apimachinery::StatusError;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::json;
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
    let started = reg.watch(filter.clone(), from, initial_events).await;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or_else(|| {
        let jitter = uuid::Uuid::new_v4().as_u128() as u64 % MIN_REQUEST_TIMEOUT;
        MIN_REQUEST_TIMEOUT + jitter
    }));
    let ri = res.info().clone();
    // Protobuf for the kinds that have a protobuf form; custom resources stay JSON.
    let protobuf = match format {
        Format::PartialObjectMetadata { protobuf, .. } => protobuf,
        Format::Protobuf => apimachinery::protobuf::schema::Schema::get()
            .by_kind(&ri.gvk.api_version(), &ri.gvk.kind)
            .is_some(),
        _ => false,
    };
    match started {
        Ok(w) => {
            let enc = Encoder {
                sent: super::metrics::WATCH_EVENTS.get_or_create_owned(
                    &super::metrics::WatchLabels {
                        group: ri.gvk.group.clone(),
                        version: ri.gvk.version.clone(),
                        resource: ri.resource.clone(),
                    },
                ),
                res: res.clone(),
                format,
                protobuf,
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
            let _ = tx.try_send(error_event(&e, protobuf));
        }
        Err(e) => return Err(e),
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    let content_type = if protobuf {
        "application/vnd.kubernetes.protobuf;stream=watch"
    } else {
        "application/json"
    };
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
    /// `apiserver_watch_events_total` of this resource.
    sent: prometheus_client::metrics::counter::Counter,
    format: Format,
    /// Length-prefixed protobuf `WatchEvent`s instead of JSON lines.
    protobuf: bool,
    kind: String,
    api_version: String,
}

/// An ERROR event carrying a Status.
fn error_event(e: &StatusError, protobuf: bool) -> Bytes {
    if protobuf
        && let Ok(frame) = apimachinery::protobuf::encode_watch_event("ERROR", &e.to_status())
    {
        return Bytes::from(frame);
    }
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": e.to_status()})
    ))
}

impl Encoder {
    /// A protobuf frame of an object; JSON when it cannot be encoded (it always can for
    /// the kinds this stream was opened for in protobuf).
    fn frame(&self, t: &str, obj: &serde_json::Value) -> Bytes {
        match apimachinery::protobuf::encode_watch_event(t, obj) {
            Ok(frame) => Bytes::from(frame),
            Err(e) => {
                tracing::warn!(error = %e, "watch event has no protobuf form");
                Bytes::from(format!("{}\n", json!({"type": t, "object": obj})))
            }
        }
    }

    fn event(&self, t: &str, obj: &CachedObject) -> Bytes {
        self.sent.inc();
        match self.try_event(t, obj) {
            Ok(b) => b,
            // A conversion that failed (a CRD's webhook): the watcher gets the error.
            Err(e) => {
                let status = e.to_status();
                match self.protobuf {
                    true => self.frame("ERROR", &status),
                    false => {
                        Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status})))
                    }
                }
            }
        }
    }

    fn try_event(&self, t: &str, obj: &CachedObject) -> Result<Bytes, StatusError> {
        Ok(match &self.format {
            Format::PartialObjectMetadata { .. } if self.protobuf => {
                self.frame(t, &table::partial_object_metadata(&obj.value))
            }
            // The object's message is encoded once for every protobuf watcher.
            _ if self.protobuf && self.res.passthrough() => match obj.protobuf() {
                Some(raw) => Bytes::from(apimachinery::protobuf::watch_frame(
                    t,
                    &apimachinery::protobuf::envelope(&self.api_version, &self.kind, raw),
                )),
                None => self.frame(t, &obj.value),
            },
            _ if self.protobuf => self.frame(t, &*self.res.out(&obj.value)?),
            Format::Table { include_object } => {
                let meta = json!({"resourceVersion": obj.value["metadata"]["resourceVersion"]});
                let table = self
                    .res
                    .table(std::iter::once(&obj.value), meta, include_object)?;
                Bytes::from(format!("{}\n", json!({"type": t, "object": table})))
            }
            Format::PartialObjectMetadata { .. } => Bytes::from(format!(
                "{}\n",
                json!({"type": t, "object": table::partial_object_metadata(&obj.value)})
            )),
            _ if !self.res.passthrough() => Bytes::from(format!(
                "{}\n",
                json!({"type": t, "object": self.res.out(&obj.value)?})
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
        })
    }

    /// An empty list of what this watch streams, encoded as a LIST answer would be and
    /// base64-encoded: upstream's `kubernetes.io/initial-events-list-blueprint`, from
    /// which client-go's watch-list rebuilds the list it would otherwise LIST for.
    fn list_blueprint(&self, rv: i64) -> String {
        use base64::Engine;
        let (api_version, kind) = match self.format {
            Format::PartialObjectMetadata { .. } => (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadataList".to_string(),
            ),
            _ => (self.api_version.clone(), format!("{}List", self.kind)),
        };
        let meta = json!({"resourceVersion": rv.to_string()});
        let encoded = match self.protobuf {
            true => {
                apimachinery::protobuf::encode_list(&api_version, &kind, &meta, std::iter::empty())
                    .unwrap_or_default()
            }
            false => serde_json::to_vec(
                &json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": []}),
            )
            .unwrap_or_default(),
        };
        base64::engine::general_purpose::STANDARD.encode(encoded)
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({
                "k8s.io/initial-events-end": "true",
                "kubernetes.io/initial-events-list-blueprint": self.list_blueprint(rv),
            });
        }
        let obj = match self.format {
            Format::PartialObjectMetadata { .. } => json!({"kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1", "metadata": meta}),
            _ => json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta}),
        };
        if self.protobuf {
            return self.frame("BOOKMARK", &obj);
        }
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
                    let _ = tx.send(error_event(&e, enc.protobuf)).await;
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
