//! Client certificate rotation (client-go `util/certificate.Manager` as the kubelet runs
//! it with `rotateCertificates: true`): at a jittered 70–90 % of the current
//! certificate's lifetime, a new key and a new CSR signed in with the current
//! certificate; the issued pair becomes `kubelet-client-current.pem`, which the kubelet's
//! client presents on its next connection.

use super::csr::{generate_key, request_node_certificate};
use super::store::FileStore;
use std::path::PathBuf;
use std::time::Duration;

/// Upstream's `nextRotationDeadline`: `notBefore` plus 70–90 % of the lifetime; `jitter`
/// in [0, 1) picks the point.
pub fn rotation_deadline(not_before: i64, not_after: i64, jitter: f64) -> i64 {
    let total = (not_after - not_before).max(0) as f64;
    not_before + (total * (0.7 + 0.2 * jitter.clamp(0.0, 1.0))).round() as i64
}

/// Generates a key, obtains a certificate for it (`obtain` gets the key's PEM) and makes
/// the pair current; the path the kubelet reads it from.
pub async fn renew<Fut>(
    store: &FileStore,
    obtain: impl FnOnce(String) -> Fut,
) -> Result<PathBuf, String>
where
    Fut: Future<Output = Result<String, String>>,
{
    let key = generate_key()?;
    let cert = obtain(key.clone()).await?;
    store.update(&cert, &key)
}

/// Sleeps until the Unix second `at` (not at all when it has passed).
pub async fn sleep_until(at: i64) {
    let now = jiff::Timestamp::now().as_second();
    if at > now {
        tokio::time::sleep(Duration::from_secs((at - now) as u64)).await;
    }
}

/// The next retry delay after a failure: doubled, at most upstream's 128 s.
pub fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(Duration::from_secs(128))
}

fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

/// Rotates the client certificate in `store` for as long as the kubelet runs.
pub async fn run(store: FileStore, client: kube::Client, node: String) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let validity = store.current().as_deref().and_then(super::validity);
        let Some((from, to)) = validity else {
            tracing::warn!("no current client certificate to rotate");
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        let deadline = rotation_deadline(from, to, jitter());
        let now = jiff::Timestamp::now().as_second();
        crate::metrics::METRICS
            .certificate_client_ttl_seconds
            .set(to - now);
        if deadline > now {
            tracing::info!(
                expiration = %jiff::Timestamp::from_second(to).unwrap_or_default(),
                rotation_deadline = %jiff::Timestamp::from_second(deadline).unwrap_or_default(),
                "certificate rotation scheduled"
            );
            sleep_until(deadline).await;
        }
        tracing::info!("rotating the client certificate");
        let (client, node) = (&client, &node);
        let result = renew(&store, |key| async move {
            request_node_certificate(client, &key, node, Duration::from_secs(300)).await
        })
        .await;
        match result {
            Ok(path) => {
                tracing::info!(certificate = %path.display(), "client certificate rotated");
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                crate::metrics::METRICS
                    .certificate_client_renew_errors
                    .inc();
                tracing::warn!(error = e, retry_in = ?backoff, "rotating the client certificate failed");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fall_between_seventy_and_ninety_percent() {
        assert_eq!(rotation_deadline(1000, 2000, 0.0), 1700);
        assert_eq!(rotation_deadline(1000, 2000, 0.5), 1800);
        assert_eq!(rotation_deadline(1000, 2000, 0.999), 1900);
        assert_eq!(rotation_deadline(1000, 1000, 0.3), 1000);
    }
}
