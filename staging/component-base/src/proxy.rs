//! An upgrade-aware reverse proxy (upstream `apimachinery/pkg/util/proxy`): plain
//! requests stream their response back; `Connection: Upgrade` requests (exec, attach,
//! port-forward over SPDY or WebSocket) become a byte pipe between client and backend
//! once both sides switched protocols. The apiserver reaches kubelets, pods and services
//! through it; the kubelet reaches its runtime's streaming server.

use crate::body::{Body, full};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::time::Duration;

/// Where a proxied request goes.
#[derive(Clone, Debug)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query on the backend, e.g. `/containerLogs/ns/pod/c?follow=true`.
    pub path_and_query: String,
    /// The name the backend's certificate must carry when it differs from `host` (an
    /// aggregated API server is verified as `<service>.<namespace>.svc`).
    pub server_name: Option<String>,
}

#[derive(Debug)]
pub enum ProxyError {
    /// The backend could not be reached or answered nothing (upstream: a 503).
    Unreachable(String),
    /// The target's path is not a valid URI.
    InvalidPath,
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Unreachable(e) => write!(f, "error trying to reach service: {e}"),
            ProxyError::InvalidPath => f.write_str("invalid proxy path"),
        }
    }
}

pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// A connection to the target: TCP, then TLS (verified as `server_name`, else `host`)
/// when it is https.
pub async fn dial(t: &Target, tls: tokio_rustls::TlsConnector) -> Result<Box<dyn Stream>, String> {
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
    let name = ServerName::try_from(t.server_name.clone().unwrap_or_else(|| t.host.clone()))
        .map_err(|e| e.to_string())?;
    let stream = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
    Ok(Box::new(stream))
}

/// An HTTP/1.1 connection to the target, driven (with upgrades) by a task of its own.
async fn connect<B>(
    target: &Target,
    tls: tokio_rustls::TlsConnector,
) -> Result<hyper::client::conn::http1::SendRequest<B>, ProxyError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addr = format!("{}:{}", target.host, target.port);
    let io = dial(target, tls)
        .await
        .map_err(|e| ProxyError::Unreachable(format!("dial tcp {addr}: {e}")))?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(send)
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

/// Sends `req` to `target` (over `tls` when it is https) and relays the answer, or the
/// upgraded connection. The caller's `Authorization` is not passed on: it was for us.
pub async fn forward(
    mut req: Request<hyper::body::Incoming>,
    target: &Target,
    tls: tokio_rustls::TlsConnector,
) -> Result<Response<Body>, ProxyError> {
    let failed = |e: String| ProxyError::Unreachable(e);
    let addr = format!("{}:{}", target.host, target.port);
    let mut send = connect(target, tls).await?;
    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    parts.uri = target
        .path_and_query
        .parse()
        .map_err(|_| ProxyError::InvalidPath)?;
    parts.headers.remove(hyper::header::AUTHORIZATION);
    if let Ok(h) = addr.parse() {
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
        return Ok(Response::from_parts(parts, full(Vec::new())));
    }
    let (parts, body) = resp.into_parts();
    let body = body.map_err(std::io::Error::other).boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

/// What [`get`] answers when the target does not answer within the timeout (Go's
/// `http.Client` wording).
pub const TIMED_OUT: &str = "Client.Timeout exceeded while awaiting headers";

/// One request of our own to the target (a health or discovery probe): its status and
/// body, within `timeout`.
pub async fn get(
    target: &Target,
    tls: tokio_rustls::TlsConnector,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<(u16, bytes::Bytes), String> {
    let round = async {
        let io = dial(target, tls).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::get(target.path_and_query.as_str()).header(
            hyper::header::HOST,
            format!("{}:{}", target.host, target.port),
        );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((code, body))
    };
    tokio::time::timeout(timeout, round)
        .await
        .map_err(|_| TIMED_OUT.to_string())?
}

/// A backend connection after `101 Switching Protocols`.
pub struct Upgraded {
    pub headers: hyper::HeaderMap,
    pub io: TokioIo<hyper::upgrade::Upgraded>,
}

/// What an upgrade request of our own came to.
pub enum UpgradeOutcome {
    Upgraded(Upgraded),
    /// The backend answered without switching: its response, to relay.
    Refused(Response<Body>),
}

/// An upgrade request of our own to the target (the apiserver speaking SPDY to a kubelet
/// for a client that speaks WebSocket).
pub async fn upgrade(
    target: &Target,
    tls: tokio_rustls::TlsConnector,
    method: hyper::Method,
    headers: &[(&str, String)],
) -> Result<UpgradeOutcome, ProxyError> {
    let failed = |e: String| ProxyError::Unreachable(e);
    let addr = format!("{}:{}", target.host, target.port);
    let mut send = connect(target, tls).await?;
    let mut req = Request::builder()
        .method(method)
        .uri(target.path_and_query.as_str())
        .header(hyper::header::HOST, addr.as_str())
        .header(hyper::header::CONNECTION, "Upgrade");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| ProxyError::InvalidPath)?;
    let mut resp = send
        .send_request(req)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = resp.into_parts();
        let body = body.map_err(std::io::Error::other).boxed_unsync();
        return Ok(UpgradeOutcome::Refused(Response::from_parts(parts, body)));
    }
    let headers = resp.headers().clone();
    let io = hyper::upgrade::on(&mut resp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(UpgradeOutcome::Upgraded(Upgraded {
        headers,
        io: TokioIo::new(io),
    }))
}
