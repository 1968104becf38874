//! How the apiserver reaches kubelets (`pods/log`, `exec`, `attach`, `portforward`,
//! node proxy) and pods or services (`proxy`), through component-base's upgrade-aware
//! proxy: kubelets with `--kubelet-client-certificate` and, when set,
//! `--kubelet-certificate-authority`; failures as upstream's `metav1.Status`.

use crate::endpoints::negotiation::Body;
use apimachinery::StatusError;
use hyper::{Request, Response};

/// Where a proxied request goes.
#[derive(Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query on the backend, e.g. `/containerLogs/ns/pod/c?follow=true`.
    pub path_and_query: String,
    /// The TLS client to reach an https backend with: a kubelet's (see
    /// [`kubelet_tls`]); None for pods and services, whose certificates are not
    /// verified, as upstream's proxy does not verify them.
    pub tls: Option<TlsConnector>,
}

/// The apiserver's TLS client towards kubelets: `--kubelet-client-certificate` /
/// `--kubelet-client-key` (its identity) and `--kubelet-certificate-authority` (verifying
/// their serving certificates; without it they are not verified, as upstream).
pub fn kubelet_tls(
    client: Option<(&std::path::Path, &std::path::Path)>,
    ca: Option<&std::path::Path>,
) -> Result<TlsConnector, String> {
    let roots = ca.map(crate::server::tls::load_roots).transpose()?;
    let identity = client
        .map(|(cert, key)| crate::server::tls::load_pem(cert, key))
        .transpose()?;
    component_base::tls::client(roots.as_deref(), identity)
        .map_err(|e| format!("kubelet client TLS (--kubelet-certificate-authority, --kubelet-client-certificate): {e}"))
}

/// Kubelet serving certificates are self-signed unless the cluster issues them; until
/// `--kubelet-certificate-authority` is configured the apiserver does not verify them,
/// as upstream does without that flag.
pub use component_base::tls::{AcceptAny, unverified_tls};
pub use tokio_rustls::TlsConnector;

/// Sends `req` to `target` and relays the answer (or the upgraded connection).
pub async fn forward(
    req: Request<hyper::body::Incoming>,
    target: Target,
) -> Result<Response<Body>, StatusError> {
    let tls = target.tls.unwrap_or_else(unverified_tls);
    let to = component_base::proxy::Target {
        https: target.https,
        host: target.host,
        port: target.port,
        path_and_query: target.path_and_query,
        server_name: None,
    };
    component_base::proxy::forward(req, &to, tls)
        .await
        .map_err(|e| match e {
            // As upstream's proxy transport: an unreachable backend is a 503.
            component_base::proxy::ProxyError::Unreachable(_) => {
                StatusError::service_unavailable(e.to_string())
            }
            component_base::proxy::ProxyError::InvalidPath => {
                StatusError::bad_request(e.to_string())
            }
        })
}
