//! NodePort allocation (upstream `pkg/registry/core/service/portallocator`): a bitmap of
//! the `--service-node-port-range` kept in storage as a RangeAllocation and changed only
//! by compare-and-swap, so concurrent allocations never hand out one port twice.

use apimachinery::{Cause, StatusError};
use apiserver::storage::interface::{Backend, StoreError};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct PortAllocator {
    pub base: u16,
    pub size: u16,
    backend: Arc<dyn Backend>,
    key: String,
}

/// Parses `30000-32767` (or a single port).
pub fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (
        a.trim()
            .parse()
            .map_err(|_| format!("invalid port range {s:?}"))?,
        b.trim()
            .parse()
            .map_err(|_| format!("invalid port range {s:?}"))?,
    );
    if a == 0 || b < a {
        return Err(format!("invalid port range {s:?}"));
    }
    Ok((a, b - a + 1))
}

impl PortAllocator {
    pub fn new(base: u16, size: u16, backend: Arc<dyn Backend>, storage_prefix: &str) -> Self {
        Self {
            base,
            size,
            backend,
            key: format!("{storage_prefix}/ranges/servicenodeports"),
        }
    }

    fn range(&self) -> String {
        format!("{}-{}", self.base, self.base as u32 + self.size as u32 - 1)
    }

    /// Read-modify-write of the bitmap; `f` returns the port it claimed or released.
    async fn update<T>(
        &self,
        mut f: impl FnMut(&mut Vec<u8>) -> Result<T, StatusError>,
    ) -> Result<T, StatusError> {
        loop {
            let (kv, _) = self
                .backend
                .get(&self.key)
                .await
                .map_err(|e| StatusError::internal(e.to_string()))?;
            let (mut bits, expected) = match &kv {
                Some(kv) => {
                    let v: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(v["data"].as_str().unwrap_or_default())
                        .unwrap_or_default();
                    (data, kv.mod_revision)
                }
                None => (Vec::new(), 0),
            };
            bits.resize(self.size as usize / 8 + 1, 0);
            let out = f(&mut bits)?;
            let doc = json!({"kind": "RangeAllocation", "apiVersion": "v1", "metadata": {"creationTimestamp": null}, "range": self.range(), "data": base64::engine::general_purpose::STANDARD.encode(&bits)});
            let bytes = serde_json::to_vec(&doc).expect("JSON").into();
            let res = if expected == 0 {
                self.backend.create(&self.key, bytes).await
            } else {
                self.backend.update(&self.key, bytes, expected).await
            };
            match res {
                Ok(_) => return Ok(out),
                Err(StoreError::Conflict(_) | StoreError::AlreadyExists) => continue,
                Err(e) => return Err(StatusError::internal(e.to_string())),
            }
        }
    }

    fn get(bits: &[u8], i: usize) -> bool {
        bits[i / 8] & (1 << (i % 8)) != 0
    }

    /// Allocates `requested` or a free port. `field` names the port in errors.
    pub async fn allocate(
        &self,
        requested: Option<u16>,
        svc_name: &str,
        field: &str,
    ) -> Result<u16, StatusError> {
        let invalid = |p: u16, d: String| {
            StatusError::invalid(
                "",
                "Service",
                svc_name,
                vec![Cause::invalid(field, &json!(p), &d)],
            )
        };
        if let Some(p) = requested
            && (p < self.base || p as u32 >= self.base as u32 + self.size as u32)
        {
            return Err(invalid(
                p,
                format!(
                    "provided port is not in the valid range. The range of valid ports is {}",
                    self.range()
                ),
            ));
        }
        let size = self.size as usize;
        let base = self.base;
        let start = super::ipallocator::rand_u32() as usize % size;
        self.update(|bits| {
            let idx = match requested {
                Some(p) => {
                    let i = (p - base) as usize;
                    if Self::get(bits, i) {
                        return Err(invalid(p, "provided port is already allocated".into()));
                    }
                    i
                }
                None => (0..size)
                    .map(|k| (start + k) % size)
                    .find(|i| !Self::get(bits, *i))
                    .ok_or_else(|| {
                        StatusError::internal("failed to allocate a nodePort: range is full")
                    })?,
            };
            bits[idx / 8] |= 1 << (idx % 8);
            Ok(base + idx as u16)
        })
        .await
    }

    pub async fn release(&self, port: u16) {
        if port < self.base || port as u32 >= self.base as u32 + self.size as u32 {
            return;
        }
        let i = (port - self.base) as usize;
        if let Err(e) = self
            .update(|bits| {
                bits[i / 8] &= !(1 << (i % 8));
                Ok(())
            })
            .await
        {
            tracing::warn!(port, error = %e, "releasing node port");
        }
    }
}
