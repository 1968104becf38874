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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        (hyper::header::UPGRADE.as_str(), spdy::UPGRADE_PROTOCOL.to_string()),
        (hs::HEADER_PROTOCOL_VERSION, hs::PORT_FORWARD_PROTOCOL_V1.to_string()),
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
        let (crd, cwr) = tokio::io::split(TokioIo::new(client));
        let (mut brd, mut bwr) = tokio::io::split(backend.io);
        let mut reader = wsstream::Reader::new(crd);
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(wsstream::Writer::new(
            cwr,
            wsstream::Role::Server,
        )));
        let pong = writer.clone();
        let to_kubelet = async move {
            while let Ok(Some(m)) = reader.next().await {
                match m {
                    wsstream::Message::Binary(b) => {
                        if bwr.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    wsstream::Message::Ping(p) => {
                        let _ = pong.lock().await.send(&wsstream::Message::Pong(p)).await;
                    }
                    wsstream::Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = bwr.shutdown().await;
        };
        let to_client = async {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = brd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let msg = wsstream::Message::Binary(buf[..n].to_vec());
                if writer.lock().await.send(&msg).await.is_err() {
                    break;
                }
            }
            let mut w = writer.lock().await;
            let _ = w.send(&wsstream::Message::Close(Some((1000, String::new())))).await;
            let _ = w.shutdown().await;
        };
        // Either side ending ends the tunnel.
        tokio::select! {
            _ = to_kubelet => {}
            _ = to_client => {}
        }
    });
    Ok(resp)
}
