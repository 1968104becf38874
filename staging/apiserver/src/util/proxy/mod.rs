//! Streams the apiserver carries between protocols (upstream
//! `apiserver/pkg/util/proxy`): WebSocket clients of exec, attach and port-forward
//! reach kubelets that speak SPDY.

pub mod streamtranslator;
pub mod streamtunnel;

use apimachinery::StatusError;
use hyper::Request;

/// The sub-protocols a WebSocket upgrade request offers; empty when it is none.
pub fn websocket_protocols<B>(req: &Request<B>) -> Vec<String> {
    let h = req.headers();
    let is_ws = h
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Vec::new();
    }
    h.get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `101` that accepts a client's WebSocket with `protocol`, and the upgrade to await.
pub fn accept_websocket(
    req: &mut Request<hyper::body::Incoming>,
    protocol: &str,
) -> Result<
    (
        hyper::Response<crate::endpoints::negotiation::Body>,
        hyper::upgrade::OnUpgrade,
    ),
    StatusError,
> {
    let key = req
        .headers()
        .get(hyper::header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| StatusError::bad_request("missing Sec-WebSocket-Key"))?
        .to_string();
    let on = hyper::upgrade::on(req);
    let resp = hyper::Response::builder()
        .status(hyper::StatusCode::SWITCHING_PROTOCOLS)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "websocket")
        .header(
            hyper::header::SEC_WEBSOCKET_ACCEPT,
            apimachinery::httpstream::wsstream::accept_key(&key),
        )
        .header(hyper::header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(component_base::body::full(Vec::new()))
        .map_err(|e| StatusError::internal(e.to_string()))?;
    Ok((resp, on))
}
