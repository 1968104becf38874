//! A backend that encrypts values on their way into storage and decrypts them on the way
//! out (writes, reads, ranges, watch events), for the key prefixes of the resources an
//! encryption configuration names. Everything above it sees plain values.

use super::interface::{
    Backend, Event, KeyValue, RangeResult, Result, StoreError, WatchBatch, WatchReceiver,
};
use super::value::Transformer;
use super::value::encryptionconfig::EncryptionConfig;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, RwLock};

pub struct Transforming {
    pub inner: Arc<dyn Backend>,
    config: Arc<EncryptionConfig>,
    /// (key prefix of a resource, its providers), learnt as resources are installed.
    rules: RwLock<Vec<(String, Arc<Transformer>)>>,
}

impl Transforming {
    pub fn new(inner: Arc<dyn Backend>, config: EncryptionConfig) -> Self {
        Self {
            inner,
            config: Arc::new(config),
            rules: RwLock::default(),
        }
    }

    fn transformer(&self, key: &str) -> Option<Arc<Transformer>> {
        self.rules
            .read()
            .unwrap()
            .iter()
            .find(|(p, _)| key.starts_with(p.as_str()))
            .map(|(_, t)| t.clone())
    }

    fn seal(&self, key: &str, value: Bytes) -> Result<Bytes> {
        match self.transformer(key) {
            None => Ok(value),
            Some(t) => t.to_storage(key, &value).map(Bytes::from).map_err(|e| {
                StoreError::Unavailable(format!("unable to transform key {key:?}: {e}"))
            }),
        }
    }

    fn open_kv(&self, mut kv: KeyValue) -> Result<KeyValue> {
        if kv.value.is_empty() {
            return Ok(kv);
        }
        if let Some(t) = self.transformer(&kv.key) {
            kv.value = t
                .from_storage(&kv.key, &kv.value)
                .map(Bytes::from)
                .map_err(|e| {
                    StoreError::Unavailable(format!("unable to transform key {:?}: {e}", kv.key))
                })?;
        }
        Ok(kv)
    }

    fn open_err(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Conflict(Some(kv)) => match self.open_kv(kv) {
                Ok(kv) => StoreError::Conflict(Some(kv)),
                Err(e) => e,
            },
            other => other,
        }
    }

    fn open_event(&self, e: Event) -> Result<Event> {
        Ok(Event {
            kind: e.kind,
            kv: self.open_kv(e.kv)?,
            prev: e.prev.map(|p| self.open_kv(p)).transpose()?,
        })
    }
}

#[async_trait]
impl Backend for Transforming {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, i64)> {
        let (kv, rev) = self.inner.get(key).await?;
        Ok((kv.map(|kv| self.open_kv(kv)).transpose()?, rev))
    }

    async fn range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: i64,
    ) -> Result<RangeResult> {
        let mut r = self.inner.range(prefix, start, limit, revision).await?;
        r.kvs = r
            .kvs
            .into_iter()
            .map(|kv| self.open_kv(kv))
            .collect::<Result<_>>()?;
        Ok(r)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let value = self.seal(key, value)?;
        self.inner.create(key, value).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: i64) -> Result<i64> {
        let value = self.seal(key, value)?;
        self.inner
            .update(key, value, expected)
            .await
            .map_err(|e| self.open_err(e))
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<(i64, KeyValue)> {
        let (rev, kv) = self
            .inner
            .delete(key, expected)
            .await
            .map_err(|e| self.open_err(e))?;
        Ok((rev, self.open_kv(kv)?))
    }

    fn request_progress(&self) {
        self.inner.request_progress();
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<WatchReceiver> {
        if self.transformer(prefix).is_none()
            && !self
                .rules
                .read()
                .unwrap()
                .iter()
                .any(|(p, _)| p.starts_with(prefix))
        {
            return self.inner.watch(prefix, from).await;
        }
        let mut inner = self.inner.watch(prefix, from).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let rules = self.rules.read().unwrap().clone();
        let me = Transforming {
            inner: self.inner.clone(),
            config: self.config.clone(),
            rules: RwLock::new(rules),
        };
        tokio::spawn(async move {
            while let Some(batch) = inner.recv().await {
                let out = batch.and_then(|b| {
                    Ok(WatchBatch {
                        events: b
                            .events
                            .into_iter()
                            .map(|e| me.open_event(e))
                            .collect::<Result<_>>()?,
                        revision: b.revision,
                    })
                });
                let failed = out.is_err();
                if tx.send(out).is_err() || failed {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.inner.count(prefix).await
    }

    fn register_resource(&self, prefix: &str, group: &str, resource: &str) {
        if let Some(t) = self.config.transformer_for(group, resource) {
            tracing::info!(group, resource, "encrypting at rest");
            self.rules
                .write()
                .unwrap()
                .push((prefix.to_string(), Arc::new(t.clone())));
        }
    }
}
