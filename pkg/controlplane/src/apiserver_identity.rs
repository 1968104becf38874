//! The apiserver's identity lease (upstream KEP-1965, `controlplane/controller/apiserverleasegc`
//! and the identity lease controller): `kube-system/apiserver-<id>` with
//! `holderIdentity: <id>_<instance uid>`, renewed every 10 s for 3600 s and labelled
//! `apiserver.kubernetes.io/identity=kube-apiserver`, where the id hashes the host name
//! (a restarted server on the same host takes its lease over). Leases of servers gone
//! for longer than their duration are deleted.

use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::options::{DeleteOptions, ListOptions};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
const LEASE_DURATION_SECONDS: i64 = 3600;
const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Upstream's apiserver id: `apiserver-` and the lower-case unpadded base32 of the first
/// 16 bytes of SHA-256 over the length-prefixed host name and "kube-apiserver".
pub fn identity(hostname: &str) -> String {
    let mut data = Vec::new();
    for part in [hostname.as_bytes(), b"kube-apiserver".as_slice()] {
        data.extend_from_slice(&(part.len() as u16).to_be_bytes());
        data.extend_from_slice(part);
    }
    let hash = ring::digest::digest(&ring::digest::SHA256, &data);
    format!("apiserver-{}", base32(&hash.as_ref()[..16]).to_lowercase())
}

fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Whether a lease was last renewed longer than its duration ago.
pub fn expired(lease: &Value, now: jiff::Timestamp) -> bool {
    let renewed = lease["spec"]["renewTime"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let duration = lease["spec"]["leaseDurationSeconds"].as_i64().unwrap_or(0);
    match renewed {
        Some(t) => now.as_second() > t.as_second() + duration,
        None => true,
    }
}

pub struct IdentityLease {
    pub leases: Arc<Registry>,
    pub hostname: String,
    pub holder: String,
}

impl IdentityLease {
    pub fn new(leases: Arc<Registry>, hostname: String, instance: &str) -> Self {
        let holder = format!("{}_{instance}", identity(&hostname));
        IdentityLease {
            leases,
            hostname,
            holder,
        }
    }

    async fn renew(&self) -> Result<(), String> {
        let name = identity(&self.hostname);
        let spec = json!({"holderIdentity": self.holder, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now_micro()});
        match self.leases.get(Some("kube-system"), &name).await {
            Err(e) if e.code == 404 => {
                let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-system",
                        "labels": {IDENTITY_LABEL: "kube-apiserver", "kubernetes.io/hostname": self.hostname}},
                    "spec": spec});
                let (lease, _) = self.leases.strategy.decode(lease).map_err(|e| e.message)?;
                self.leases
                    .create(Some("kube-system"), lease, false)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.message)
            }
            Err(e) => Err(e.message),
            Ok(_) => self
                .leases
                .guaranteed_update(Some("kube-system"), &name, Part::Main, false, &mut |cur| {
                    let mut next = cur.cloned().unwrap_or(Value::Null);
                    for (k, v) in spec.as_object().unwrap() {
                        next["spec"][k] = v.clone();
                    }
                    apiserver::registry::meta::meta_mut(&mut next).remove("resourceVersion");
                    Ok(next)
                })
                .await
                .map(|_| ())
                .map_err(|e| e.message),
        }
    }

    /// Deletes identity leases that expired (their servers are gone).
    async fn collect_garbage(&self) -> Result<(), String> {
        let opts = ListOptions {
            label_selector: apimachinery::labels::Selector::parse(&format!(
                "{IDENTITY_LABEL}=kube-apiserver"
            ))?,
            ..Default::default()
        };
        let list = self
            .leases
            .list(Some("kube-system"), &opts)
            .await
            .map_err(|e| e.message)?;
        let now = jiff::Timestamp::now();
        for item in list.items {
            if expired(&item.value, now) {
                let name = item.value["metadata"]["name"].as_str().unwrap_or_default();
                // Only the version seen expired: a lease renewed meanwhile stays.
                let opts = DeleteOptions {
                    precondition_rv: item.value["metadata"]["resourceVersion"]
                        .as_str()
                        .map(String::from),
                    ..Default::default()
                };
                let _ = self.leases.delete(Some("kube-system"), name, &opts).await;
            }
        }
        Ok(())
    }

    pub async fn run(self) {
        loop {
            if let Err(e) = self.renew().await {
                tracing::warn!(error = e, "renewing the apiserver identity lease");
            }
            if let Err(e) = self.collect_garbage().await {
                tracing::warn!(error = e, "collecting expired apiserver identity leases");
            }
            tokio::time::sleep(RENEW_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_upstreams_shape() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let id = identity("master-1");
        assert!(id.starts_with("apiserver-"));
        assert_eq!(id.len(), "apiserver-".len() + 26);
        assert_ne!(identity("master-2"), id);
        assert_eq!(identity("master-1"), id);
    }

    #[test]
    fn leases_expire_after_their_duration() {
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let lease =
            |renewed: &str| json!({"spec": {"renewTime": renewed, "leaseDurationSeconds": 3600}});
        assert!(!expired(&lease("2026-01-01T00:30:00.000000Z"), now));
        assert!(expired(&lease("2025-12-31T23:59:00.000000Z"), now));
        assert!(expired(&json!({"spec": {}}), now));
    }
}
