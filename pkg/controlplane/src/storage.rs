//! Storage backend selection and etcd compaction (upstream `storage/etcd3/compact.go`).

use crate::config::Config;
use apiserver::storage::embedded::EmbeddedBackend;
use apiserver::storage::etcd3::EtcdBackend;
use apiserver::storage::interface::Backend;
use apiserver::storage::transforming::Transforming;
use apiserver::storage::value::encryptionconfig::EncryptionConfig;
use std::sync::Arc;
use std::time::Duration;

/// The backend, wrapped to encrypt the resources `--encryption-provider-config` names.
pub async fn open(cfg: &Config) -> Result<Arc<dyn Backend>, String> {
    let encryption = cfg
        .encryption_provider_config
        .as_deref()
        .map(EncryptionConfig::load)
        .transpose()?;
    let backend = open_raw(cfg).await?;
    Ok(match encryption {
        Some(c) => Arc::new(Transforming::new(backend, c)),
        None => backend,
    })
}

/// `--etcd-cafile`/`--etcd-certfile`/`--etcd-keyfile`, read once at start.
fn etcd_tls(cfg: &Config) -> Result<Option<apiserver::storage::etcd3::EtcdTls>, String> {
    let read = |p: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, String> {
        p.as_ref()
            .map(|p| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display())))
            .transpose()
    };
    let tls = apiserver::storage::etcd3::EtcdTls {
        ca: read(&cfg.etcd_cafile)?,
        cert: read(&cfg.etcd_certfile)?,
        key: read(&cfg.etcd_keyfile)?,
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err("--etcd-certfile and --etcd-keyfile must be given together".into());
    }
    let https = cfg.etcd_servers.iter().any(|s| s.starts_with("https://"));
    if https && tls.ca.is_none() {
        return Err("https --etcd-servers need --etcd-cafile to verify etcd".into());
    }
    Ok((tls.ca.is_some() || tls.cert.is_some()).then_some(tls))
}

/// etcd when `--etcd-servers` is given, else the embedded store under `--data-dir`.
async fn open_raw(cfg: &Config) -> Result<Arc<dyn Backend>, String> {
    if cfg.etcd_servers.is_empty() {
        tracing::info!(dir = %cfg.data_dir.display(), "using the embedded store");
        let dir = cfg.data_dir.clone();
        let b = tokio::task::spawn_blocking(move || EmbeddedBackend::open(&dir))
            .await
            .map_err(|e| e.to_string())?;
        return b
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("opening embedded store: {e}"));
    }
    tracing::info!(servers = ?cfg.etcd_servers, "using etcd");
    // etcd may come up after the apiserver (static pods start together; a joining
    // control-plane node's member starts last): keep trying for 30 s before giving up.
    let tls = etcd_tls(cfg)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let err = match tokio::time::timeout(
            left,
            EtcdBackend::connect_tls(&cfg.etcd_servers, tls.as_ref()),
        )
        .await
        {
            Ok(Ok(b)) => return Ok(Arc::new(b)),
            Ok(Err(e)) => format!("connecting to etcd: {e}"),
            Err(_) => format!("timed out connecting to etcd at {:?}", cfg.etcd_servers),
        };
        if tokio::time::Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(err);
        }
        tracing::warn!(error = err, "etcd is not reachable yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every interval, compacts history up to the revision seen one interval earlier, so
/// clients keep at least one interval of history to resume watches from.
pub async fn compaction_loop(backend: Arc<dyn Backend>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut previous: Option<i64> = None;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tick.tick().await;
        let now = match backend.current_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "compaction: reading revision");
                continue;
            }
        };
        if let Some(rev) = previous {
            match backend.compact(rev).await {
                Ok(()) => tracing::debug!(revision = rev, "compacted storage"),
                Err(e) => tracing::warn!(revision = rev, error = %e, "compaction failed"),
            }
        }
        previous = Some(now);
    }
}
