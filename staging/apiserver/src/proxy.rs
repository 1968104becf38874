//! An upgrade-aware reverse proxy (upstream `apimachinery/pkg/util/proxy`): how the
//! apiserver reaches kubelets (`pods/log`, `exec`, `attach`, `portforward`, node proxy)
//! and pods or services (`proxy`). Plain requests stream their response back;
//! `Connection: Upgrade` requests (exec, attach, port-forward over SPDY or WebSocket)
//! become a byte pipe between client and backend once both sides switched protocols.

use crate::endpoints::negotiation::Body;
use apimachinery::StatusError;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;

/// Where a proxied request goes.
#[derive(Clone, Debug)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query on the backend, e.g. `/containerLogs/ns/pod/c?follow=true`.
    pub path_and_query: String,
    /// A kubelet: reached with `--kubelet-client-certificate` and checked against
    /// `--kubelet-certificate-authority` when those are set.
    pub kubelet: bool,
}

static KUBELET_TLS: std::sync::OnceLock<tokio_rustls::TlsConnector> = std::sync::OnceLock::new();

/// `--kubelet-client-certificate`/`--kubelet-client-key` (the apiserver's identity
/// towards kubelets) and `--kubelet-certificate-authority` (verifying their serving
/// certificates; without it they are not verified, as upstream).
pub fn configure_kubelet_client(
    client: Option<(&std::path::Path, &std::path::Path)>,
    ca: Option<&std::path::Path>,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::server::tls::load_roots(ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("--kubelet-certificate-authority: {e}"))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny)),
    };
    let cfg = match client {
        Some((cert, key)) => {
            let (certs, key) = crate::server::tls::load_pem(cert, key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("--kubelet-client-certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    let _ = KUBELET_TLS.set(tokio_rustls::TlsConnector::from(Arc::new(cfg)));
    Ok(())
}

/// Kubelet serving certificates are self-signed unless the cluster issues them; until
/// `--kubelet-certificate-authority` is configured the apiserver does not verify them,
/// as upstream does without that flag.
pub use component_base::tls::{AcceptAny, unverified_tls};

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn dial(t: &Target) -> Result<Box<dyn Stream>, String> {
    let addr = (t.host.as_str(), t.port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| "i/o timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if !t.https {
        return Ok(Box::new(tcp));
    }
    let name = ServerName::try_from(t.host.clone()).map_err(|e| e.to_string())?;
    let connector = match KUBELET_TLS.get() {
        Some(k) if t.kubelet => k.clone(),
        _ => unverified_tls(),
    };
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Box::new(stream))
}

fn is_upgrade(req: &Request<hyper::body::Incoming>) -> bool {
    req.headers()
        .get(hyper::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// Sends `req` to `target` and relays the answer (or the upgraded connection).
pub async fn forward(
    mut req: Request<hyper::body::Incoming>,
    target: Target,
) -> Result<Response<Body>, StatusError> {
    // As upstream's proxy transport: an unreachable backend is a 503.
    let failed =
        |e: String| StatusError::service_unavailable(format!("error trying to reach service: {e}"));
    let addr = format!("{}:{}", target.host, target.port);
    let io = dial(&target)
        .await
        .map_err(|e| failed(format!("dial tcp {addr}: {e}")))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    parts.uri = target
        .path_and_query
        .parse()
        .map_err(|_| StatusError::bad_request("invalid proxy path"))?;
    // The caller's credentials are for this apiserver, not for the backend.
    parts.headers.remove(hyper::header::AUTHORIZATION);
    if let Ok(h) = format!("{}:{}", target.host, target.port).parse() {
        parts.headers.insert(hyper::header::HOST, h);
    }
    let mut resp = send
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| failed(e.to_string()))?;
    if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(client), Ok(backend)) = (client_upgrade.await, backend_upgrade.await) else {
                return;
            };
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(
            parts,
            crate::endpoints::negotiation::full(Vec::new()),
        ));
    }
    let (parts, body) = resp.into_parts();
    let body = body.map_err(std::io::Error::other).boxed_unsync();
    Ok(Response::from_parts(parts, body))
}
