//! port-forward for WebSocket clients (upstream `streamtunnel.go`, the
//! `PortForwardWebsockets` feature, on since v1.31): the client offers
//! `SPDY/3.1+portforward.k8s.io`, we upgrade to SPDY with the kubelet first, then accept
//! the WebSocket and carry the SPDY bytes in its binary messages both ways. A kubelet
//! refusal goes back as it came, so the client can fall back to plain SPDY.

use super::accept_websocket;
use crate::endpoints::negotiation::Body;
use apimachinery::StatusError;
use apimachinery::httpstream::{self as hs, spdy, wsstream};
use component_base::proxy::{Target, UpgradeOutcome};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub fn wants_tunnel<B>(req: &Request<B>) -> bool {
    super::websocket_protocols(req)
        .iter()
        .any(|p| p == hs::PORT_FORWARD_TUNNELING_PROTOCOL)
}

pub async fn tunnel(
    mut req: Request<hyper::body::Incoming>,
    target: Target,
    tls: tokio_rustls::TlsConnector,
) -> Result<Response<Body>, StatusError> {
    let headers = [
        (
            hyper::header::UPGRADE.as_str(),
            spdy::UPGRADE_PROTOCOL.to_string(),
        ),
        (
            hs::HEADER_PROTOCOL_VERSION,
            hs::PORT_FORWARD_PROTOCOL_V1.to_string(),
        ),
    ];
    let backend = match component_base::proxy::upgrade(&target, tls, hyper::Method::POST, &headers)
        .await
        .map_err(|e| StatusError::service_unavailable(e.to_string()))?
    {
        UpgradeOutcome::Upgraded(up) => up,
        UpgradeOutcome::Refused(resp) => return Ok(resp),
    };
    let (resp, on_upgrade) = accept_websocket(&mut req, hs::PORT_FORWARD_TUNNELING_PROTOCOL)?;
    tokio::spawn(async move {
        let Ok(client) = on_upgrade.await else { return };
        let mut bytes = wsstream::binary_stream(TokioIo::new(client), wsstream::Role::Server);
        let mut backend = backend.io;
        let _ = tokio::io::copy_bidirectional(&mut bytes, &mut backend).await;
    });
    Ok(resp)
}
