//! The `kubernetes` Service's endpoints with several apiservers (upstream
//! `pkg/controlplane/reconcilers`, `--endpoint-reconciler-type`):
//! - `lease` (the default): every apiserver keeps a lease for its address under
//!   `<etcd-prefix>/masterleases/<ip>` (renewed every 10 s, expiring after 15 s) and writes
//!   the `default/kubernetes` Endpoints and EndpointSlice as the sorted addresses of the
//!   live leases; expired leases are deleted by whichever apiserver sees them first, and
//!   a server shutting down removes its own at once;
//! - `none`: the endpoints are left alone.
//!
//! Our store has no key TTL, so a lease carries its expiry time and the reconcilers
//! enforce it (upstream's etcd lease TTL does the same job).

use apiserver::registry::generic::{Part, Registry};
use apiserver::storage::interface::Backend;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `DefaultEndpointReconcilerInterval` and master lease TTL.
pub const INTERVAL: Duration = Duration::from_secs(10);
pub const TTL: Duration = Duration::from_secs(15);
const EXPIRES: &str = "kubernetes.io/master-lease-expires";

/// Where the leases live under `--etcd-prefix`.
pub fn lease_prefix(etcd_prefix: &str) -> String {
    format!("{}/masterleases/", etcd_prefix.trim_end_matches('/'))
}

/// The live addresses (sorted, as upstream lists them) and the keys of expired leases.
pub fn live_and_expired(
    prefix: &str,
    leases: &[(String, Value)],
    now: i64,
) -> (Vec<String>, Vec<String>) {
    let mut live = Vec::new();
    let mut expired = Vec::new();
    for (key, v) in leases {
        let until = v["metadata"]["annotations"][EXPIRES]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        if until > now {
            live.push(key.trim_start_matches(prefix).to_string());
        } else {
            expired.push(key.clone());
        }
    }
    live.sort();
    live.dedup();
    (live, expired)
}

pub struct LeaseReconciler {
    pub backend: Arc<dyn Backend>,
    /// [`lease_prefix`] of the server's `--etcd-prefix`.
    pub prefix: String,
    pub regs: HashMap<String, Arc<Registry>>,
    pub ip: String,
    pub port: u16,
    /// Set once this server leaves: the reconciler stops renewing its lease.
    leaving: std::sync::atomic::AtomicBool,
}

impl LeaseReconciler {
    /// This server's reconciler, or None with `--endpoint-reconciler-type=none`.
    pub fn for_config(
        backend: &Arc<dyn Backend>,
        regs: &HashMap<String, Arc<Registry>>,
        cfg: &crate::config::Config,
    ) -> Option<Self> {
        (cfg.endpoint_reconciler_type != "none").then(|| LeaseReconciler {
            backend: backend.clone(),
            prefix: lease_prefix(&cfg.etcd_prefix),
            regs: regs.clone(),
            ip: cfg.advertise_ip().to_string(),
            port: cfg.secure_port,
            leaving: Default::default(),
        })
    }

    fn key(&self) -> String {
        format!("{}{}", self.prefix, self.ip)
    }

    /// Writes (or renews) this server's lease.
    async fn renew(&self) -> Result<(), String> {
        let until = jiff::Timestamp::now().as_second() + TTL.as_secs() as i64;
        let value = json!({"kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": self.ip, "annotations": {EXPIRES: until.to_string()}},
            "subsets": [{"addresses": [{"ip": self.ip}]}]});
        let bytes = Bytes::from(serde_json::to_vec(&value).map_err(|e| e.to_string())?);
        let key = self.key();
        let (current, _) = self.backend.get(&key).await.map_err(|e| e.to_string())?;
        match current {
            Some(kv) => self
                .backend
                .update(&key, bytes, kv.mod_revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => self
                .backend
                .create(&key, bytes)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// The live addresses; expired leases are deleted on the way.
    async fn live(&self) -> Result<Vec<String>, String> {
        let page = self
            .backend
            .range(&self.prefix, &self.prefix, 0, 0)
            .await
            .map_err(|e| e.to_string())?;
        let mut revisions = HashMap::new();
        let leases: Vec<(String, Value)> = page
            .kvs
            .iter()
            .map(|kv| {
                revisions.insert(kv.key.clone(), kv.mod_revision);
                (
                    kv.key.clone(),
                    serde_json::from_slice(&kv.value).unwrap_or(Value::Null),
                )
            })
            .collect();
        let (live, expired) =
            live_and_expired(&self.prefix, &leases, jiff::Timestamp::now().as_second());
        for key in expired {
            // Another server may have renewed or removed it meanwhile: then it stays.
            let _ = self.backend.delete(&key, revisions[&key]).await;
        }
        Ok(live)
    }

    /// Makes the Endpoints and the EndpointSlice list exactly `ips`.
    async fn write(&self, ips: &[String]) -> Result<(), String> {
        let ports = json!([{"name": "https", "port": self.port, "protocol": "TCP"}]);
        let subsets = if ips.is_empty() {
            json!([])
        } else {
            json!([{"addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(), "ports": ports}])
        };
        set(&self.regs["endpoints"], "subsets", subsets).await?;
        if let Some(reg) = self.regs.get("endpointslices") {
            let endpoints: Vec<Value> = ips
                .iter()
                .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
                .collect();
            set(reg, "endpoints", json!(endpoints)).await?;
            set(reg, "ports", ports).await?;
        }
        Ok(())
    }

    pub async fn reconcile(&self) -> Result<(), String> {
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.renew().await?;
        let mut live = self.live().await?;
        if !live.contains(&self.ip) {
            live.push(self.ip.clone());
            live.sort();
        }
        self.write(&live).await
    }

    /// On shutdown: this server's lease goes, and the endpoints without it.
    pub async fn remove_self(&self) -> Result<(), String> {
        self.leaving
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let (Some(kv), _) = self
            .backend
            .get(&self.key())
            .await
            .map_err(|e| e.to_string())?
        {
            let _ = self.backend.delete(&kv.key, kv.mod_revision).await;
        }
        let live: Vec<String> = self
            .live()
            .await?
            .into_iter()
            .filter(|ip| *ip != self.ip)
            .collect();
        self.write(&live).await
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = e, "reconciling the kubernetes service endpoints");
            }
            tokio::time::sleep(INTERVAL).await;
        }
    }
}

/// Replaces `field` of the `default/kubernetes` object when it differs.
async fn set(reg: &Registry, field: &str, value: Value) -> Result<(), String> {
    let current = reg
        .get(Some("default"), "kubernetes")
        .await
        .map_err(|e| e.message)?;
    if current[field] == value {
        return Ok(());
    }
    reg.guaranteed_update(
        Some("default"),
        "kubernetes",
        Part::Main,
        false,
        &mut |cur| {
            let mut next = cur.cloned().unwrap_or(Value::Null);
            next[field] = value.clone();
            apiserver::registry::meta::meta_mut(&mut next).remove("resourceVersion");
            Ok(next)
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_leases_are_sorted_and_expired_ones_go() {
        let prefix = lease_prefix("/registry/");
        assert_eq!(prefix, "/registry/masterleases/");
        let lease = |ip: &str, until: i64| {
            (
                format!("{prefix}{ip}"),
                json!({"metadata": {"annotations": {EXPIRES: until.to_string()}}}),
            )
        };
        let (live, expired) = live_and_expired(
            &prefix,
            &[
                lease("10.0.0.3", 120),
                lease("10.0.0.1", 101),
                lease("10.0.0.2", 100),
                (format!("{prefix}10.0.0.9"), json!({})),
            ],
            100,
        );
        assert_eq!(live, ["10.0.0.1", "10.0.0.3"]);
        assert_eq!(
            expired,
            [format!("{prefix}10.0.0.2"), format!("{prefix}10.0.0.9")]
        );
    }
}
