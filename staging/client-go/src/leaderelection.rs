//! Leader election on a `coordination.k8s.io/v1` Lease (upstream
//! `tools/leaderelection` with the Lease lock): a candidate takes the lease when it is
//! free or its holder has not renewed within the lease duration, renews every retry
//! period, and gives up leadership when it cannot renew within the renew deadline.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// `--leader-elect-lease-duration` (15s), `--leader-elect-renew-deadline` (10s),
    /// `--leader-elect-retry-period` (2s).
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Upstream's candidate identity: the host name and a unique suffix.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{host}_{nanos:x}")
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// One attempt to acquire or renew; Ok(true) while we hold the lease.
async fn try_acquire_or_renew(api: &Api<Lease>, cfg: &Config) -> Result<bool, kube::Error> {
    let seconds = cfg.lease_duration.as_secs() as i32;
    let current = api.get_opt(&cfg.name).await?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                namespace: Some(cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now())),
                renew_time: Some(MicroTime(now())),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == cfg.identity;
    let duration =
        Duration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds).max(0) as u64);
    let renewed = spec.renew_time.as_ref().map(|t| t.0).unwrap_or_default();
    let expired = now().duration_since(renewed).unsigned_abs() > duration || holder.is_empty();
    if !ours && !expired {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(cfg.identity.clone());
        spec.acquire_time = Some(MicroTime(now()));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now()));
    // The update carries the resourceVersion read: a racing candidate gets a conflict.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Blocks until this candidate leads, then returns a future that resolves when
/// leadership is lost (the caller stops its work, as upstream exits).
pub async fn acquire(client: kube::Client, cfg: Config) -> impl Future<Output = ()> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    loop {
        match try_acquire_or_renew(&api, &cfg).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, lease = %cfg.name, "error retrieving resource lock")
            }
        }
        tokio::time::sleep(cfg.retry_period).await;
    }
    tracing::info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), identity = %cfg.identity, "successfully acquired lease");
    async move {
        let mut last_renew = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(cfg.retry_period).await;
            match tokio::time::timeout(cfg.renew_deadline, try_acquire_or_renew(&api, &cfg)).await {
                Ok(Ok(true)) => last_renew = tokio::time::Instant::now(),
                Ok(Ok(false)) => {
                    tracing::error!(lease = %cfg.name, "leadership lost: the lease has another holder");
                    return;
                }
                _ if last_renew.elapsed() > cfg.renew_deadline => {
                    tracing::error!(lease = %cfg.name, "leadership lost: failed to renew lease within the deadline");
                    return;
                }
                _ => {}
            }
        }
    }
}
