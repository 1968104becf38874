//! The etcd v3 backend (upstream `staging/src/k8s.io/apiserver/pkg/storage/etcd3`): every
//! write is a single-key transaction comparing `create_revision` / `mod_revision`, so the
//! resourceVersion a client sees is exactly etcd's mod revision.

use super::interface::*;
use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

pub struct EtcdBackend {
    client: Client,
    /// Bumped when a reader needs every watch to learn the current revision now (a
    /// consistent read from the watch cache); each watch then asks etcd for progress.
    progress: tokio::sync::watch::Sender<u64>,
}

impl EtcdBackend {
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        Self::connect_tls(endpoints, None).await
    }

    /// Connects over TLS when `tls` is given (`--etcd-cafile`, `--etcd-certfile`,
    /// `--etcd-keyfile`): the server verified with the CA, this apiserver authenticated by
    /// its client certificate, as kubeadm's stacked etcd requires.
    pub async fn connect_tls(endpoints: &[String], tls: Option<&EtcdTls>) -> Result<Self> {
        let eps: Vec<String> = endpoints
            .iter()
            .map(|e| match tls {
                Some(_) if !e.starts_with("http://") => {
                    format!("https://{}", e.trim_start_matches("https://"))
                }
                _ => e
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .to_string(),
            })
            .collect();
        let options = tls.map(|t| {
            let mut o = etcd_client::TlsOptions::new();
            if let Some(ca) = &t.ca {
                o = o.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
                o = o.identity(etcd_client::Identity::from_pem(cert, key));
            }
            etcd_client::ConnectOptions::new().with_tls(o)
        });
        let client = Client::connect(eps, options).await.map_err(map_err)?;
        Ok(Self {
            client,
            progress: tokio::sync::watch::Sender::new(0),
        })
    }
}

/// The PEM material for TLS to etcd.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    pub ca: Option<Vec<u8>>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn map_err(e: etcd_client::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("required revision has been compacted") {
        StoreError::Compacted {
            requested: 0,
            compacted: 0,
        }
    } else if msg.contains("future revision") {
        StoreError::FutureRevision(0)
    } else {
        StoreError::Unavailable(msg)
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> i64 {
    h.map(|h| h.revision()).unwrap_or_default()
}

/// The `Get` of a failed transaction's else branch: what the key holds now.
fn else_get(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().map(to_kv),
        _ => None,
    })
}

#[async_trait]
impl Backend for EtcdBackend {
    fn request_progress(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, i64)> {
        let resp = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(map_err)?;
        Ok((
            resp.kvs().first().map(to_kv),
            header_revision(resp.header()),
        ))
    }

    async fn range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: i64,
    ) -> Result<RangeResult> {
        let from = if start.is_empty() { prefix } else { start };
        let mut opts = GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_revision(revision);
        if limit > 0 {
            opts = opts.with_limit(limit as i64);
        }
        let resp = self
            .client
            .kv_client()
            .get(from, Some(opts))
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Compacted { .. } => StoreError::Compacted {
                    requested: revision,
                    compacted: 0,
                },
                StoreError::FutureRevision(_) => StoreError::FutureRevision(revision),
                other => other,
            })?;
        Ok(RangeResult {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            more: resp.more(),
            count: resp.count(),
            // The header carries the store's current revision, not the one read at.
            revision: if revision > 0 {
                revision
            } else {
                header_revision(resp.header())
            },
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists);
        }
        Ok(header_revision(resp.header()))
    }

    async fn update(&self, key: &str, value: Bytes, expected: i64) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            return match else_get(&resp) {
                None => Err(StoreError::NotFound),
                cur => Err(StoreError::Conflict(cur)),
            };
        }
        Ok(header_revision(resp.header()))
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<(i64, KeyValue)> {
        let cmp = if expected == 0 {
            Compare::create_revision(key, CompareOp::Greater, 0)
        } else {
            Compare::mod_revision(key, CompareOp::Equal, expected)
        };
        let txn = Txn::new()
            .when([cmp])
            .and_then([TxnOp::delete(
                key,
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            return match else_get(&resp) {
                None => Err(StoreError::NotFound),
                cur => Err(StoreError::Conflict(cur)),
            };
        }
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_kv),
            _ => None,
        });
        let prev = prev.ok_or(StoreError::NotFound)?;
        Ok((header_revision(resp.header()), prev))
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchReceiver> {
        let mut opts = WatchOptions::new().with_prefix().with_prev_key();
        if from > 0 {
            opts = opts.with_start_revision(from);
        }
        let mut stream = self
            .client
            .watch_client()
            .watch(prefix, Some(opts))
            .await
            .map_err(map_err)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut wanted = self.progress.subscribe();
        tokio::spawn(async move {
            // Ask etcd for a progress notification every second, and at once when a reader
            // waits for a fresh cache, so the watcher's revision advances while other keys
            // change (upstream's watch-cache progress requester does the same).
            let second = std::time::Duration::from_secs(1);
            let mut progress =
                tokio::time::interval_at(tokio::time::Instant::now() + second, second);
            loop {
                // None: ask etcd for progress (periodically, or because a reader waits).
                let msg = tokio::select! {
                    m = stream.message() => Some(m),
                    Ok(()) = wanted.changed() => None,
                    _ = progress.tick() => None,
                    _ = tx.closed() => return,
                };
                let Some(msg) = msg else {
                    if stream.request_progress().await.is_err() {
                        let _ = tx.send(Err(StoreError::Unavailable(
                            "etcd watch stream closed".into(),
                        )));
                        return;
                    }
                    continue;
                };
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        let _ = tx.send(Err(StoreError::Unavailable(
                            "etcd watch stream closed".into(),
                        )));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(map_err(e)));
                        return;
                    }
                };
                if resp.compact_revision() > 0 {
                    let _ = tx.send(Err(StoreError::Compacted {
                        requested: from,
                        compacted: resp.compact_revision(),
                    }));
                    return;
                }
                if resp.canceled() {
                    let _ = tx.send(Err(StoreError::Unavailable(format!(
                        "etcd watch canceled: {}",
                        resp.cancel_reason()
                    ))));
                    return;
                }
                let events: Vec<Event> = resp
                    .events()
                    .iter()
                    .filter_map(|e| {
                        let kv = to_kv(e.kv()?);
                        let prev = e.prev_kv().map(to_kv);
                        let kind = match e.event_type() {
                            etcd_client::EventType::Put => EventKind::Put,
                            etcd_client::EventType::Delete => EventKind::Delete,
                        };
                        Some(Event { kind, kv, prev })
                    })
                    .collect();
                // Event batches report their last event's revision; an empty response is a
                // progress notification whose header holds the revision reached.
                let revision = match events.last() {
                    Some(e) => e.kv.mod_revision,
                    None => header_revision(resp.header()),
                };
                if resp.created() && events.is_empty() {
                    continue;
                }
                if tx.send(Ok(WatchBatch { events, revision })).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => Ok(()),
            // Another apiserver (or an earlier run) already compacted further.
            Err(e) if e.to_string().contains("compacted") => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn current_revision(&self) -> Result<i64> {
        let resp = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(map_err)?;
        Ok(header_revision(resp.header()))
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let opts = GetOptions::new().with_prefix().with_count_only();
        let resp = self
            .client
            .kv_client()
            .get(prefix, Some(opts))
            .await
            .map_err(map_err)?;
        Ok(resp.count())
    }
}
