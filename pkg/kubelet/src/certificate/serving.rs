//! The kubelet's serving certificate from the cluster (`serverTLSBootstrap`, upstream
//! `pkg/kubelet/certificate.NewKubeletServerCertificateManager`): a CSR for
//! `system:node:<name>` in `system:nodes` with the node's names and addresses, signer
//! `kubernetes.io/kubelet-serving`, which an administrator (or an approver they run)
//! approves; the issued pair is `<cert-dir>/kubelet-server-current.pem`, renewed at
//! 70–90 % of its life. The kubelet API presents the current pair on each handshake and
//! refuses handshakes until there is one.

use super::csr::{Request, request_certificate};
use super::manager::{next_backoff, renew, rotation_deadline, sleep_until};
use super::store::FileStore;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// Serves whatever `kubelet-server-current.pem` holds, re-read when it changes.
#[derive(Debug)]
pub struct StoreServerCert {
    inner: client_go::cert_reload::FileCertResolver,
}

impl StoreServerCert {
    pub fn new(current: PathBuf) -> Self {
        StoreServerCert {
            inner: client_go::cert_reload::FileCertResolver::new(current.clone(), current),
        }
    }
}

impl ResolvesServerCert for StoreServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.inner.current().ok()
    }
}

/// The serving CSR for this node.
pub fn request(node: &str, hostname: &str, ips: &[std::net::IpAddr]) -> Request {
    let mut dns = vec![node.to_string()];
    if !hostname.is_empty() && hostname != node {
        dns.push(hostname.to_string());
    }
    Request {
        name: None,
        common_name: format!("system:node:{node}"),
        organizations: vec!["system:nodes".into()],
        dns_names: dns,
        ips: ips.to_vec(),
        signer: KUBELET_SERVING_SIGNER.into(),
        usages: vec!["digital signature".into(), "server auth".into()],
    }
}

/// Obtains and renews the serving certificate for as long as the kubelet runs.
pub async fn run(store: FileStore, client: kube::Client, req: Request) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if let Some((from, to)) = store.current().as_deref().and_then(super::validity) {
            sleep_until(rotation_deadline(from, to, 0.5)).await;
        }
        tracing::info!("requesting a serving certificate (kubelet-serving)");
        let (client, req) = (&client, &req);
        let result = renew(&store, |key| async move {
            request_certificate(client, &key, req, Duration::from_secs(3600)).await
        })
        .await;
        match result {
            Ok(path) => {
                tracing::info!(certificate = %path.display(), "serving certificate issued");
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                tracing::warn!(error = e, retry_in = ?backoff, "obtaining the serving certificate failed");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}
