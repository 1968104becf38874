//! Upgraded connections for exec, attach and port-forward (upstream
//! `client-go/transport/spdy` and `client-go/transport/websocket`): one request with
//! `Connection: Upgrade`, and the socket it turns into.

use crate::client::{Error, RestClient, status_error};
use apimachinery::httpstream::wsstream;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// A socket after `101 Switching Protocols`, with the answer's headers.
pub struct Upgraded {
    pub headers: http::HeaderMap,
    pub io: TokioIo<hyper::upgrade::Upgraded>,
}

/// Why an upgrade did not happen. Only [`UpgradeError::Failure`] lets a WebSocket
/// attempt fall back to SPDY, as client-go's `httpstream.IsUpgradeFailure` does.
#[derive(Debug)]
pub enum UpgradeError {
    /// The server answered without switching protocols.
    Failure(Error),
    Other(Error),
}

impl UpgradeError {
    pub fn into_error(self) -> Error {
        match self {
            UpgradeError::Failure(e) | UpgradeError::Other(e) => e,
        }
    }
}

/// Which upgrade to ask for.
pub enum Protocol<'a> {
    /// `Upgrade: SPDY/3.1` offering these `X-Stream-Protocol-Version`s.
    Spdy(&'a [&'a str]),
    /// `Upgrade: websocket` offering these `Sec-WebSocket-Protocol`s.
    WebSocket(&'a [&'a str]),
}

impl RestClient {
    /// Sends the upgrade request and hands back the switched socket.
    pub async fn upgrade(
        &self,
        method: http::Method,
        path: &str,
        protocol: Protocol<'_>,
    ) -> Result<Upgraded, UpgradeError> {
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::USER_AGENT, crate::client::user_agent())
            .header(http::header::CONNECTION, "Upgrade");
        let mut ws_key = None;
        match protocol {
            Protocol::Spdy(versions) => {
                req = req.header(
                    http::header::UPGRADE,
                    apimachinery::httpstream::spdy::UPGRADE_PROTOCOL,
                );
                for v in versions {
                    req = req.header(apimachinery::httpstream::HEADER_PROTOCOL_VERSION, *v);
                }
            }
            Protocol::WebSocket(protocols) => {
                let key = wsstream::new_key();
                req = req
                    .header(http::header::UPGRADE, "websocket")
                    .header(http::header::SEC_WEBSOCKET_VERSION, "13")
                    .header(http::header::SEC_WEBSOCKET_KEY, &key)
                    .header(http::header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "));
                ws_key = Some(key);
            }
        }
        let req = req
            .body(kube::client::Body::empty())
            .map_err(|e| UpgradeError::Other(Error::Transport(format!("error: {e}"))))?;
        let started = std::time::Instant::now();
        let resp = self.send(req).await.map_err(UpgradeError::Other)?;
        if self.verbosity >= 6 {
            eprintln!(
                "{method} {path} {} in {} milliseconds",
                resp.status(),
                started.elapsed().as_millis()
            );
        }
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            return Err(UpgradeError::Failure(upgrade_failure(status, &body)));
        }
        if let Some(key) = ws_key {
            let accept = resp
                .headers()
                .get(http::header::SEC_WEBSOCKET_ACCEPT)
                .and_then(|v| v.to_str().ok());
            if accept != Some(wsstream::accept_key(&key).as_str()) {
                return Err(UpgradeError::Failure(Error::Transport(
                    "error: unable to upgrade connection: invalid Sec-WebSocket-Accept".into(),
                )));
            }
        }
        let headers = resp.headers().clone();
        let io = hyper::upgrade::on(resp).await.map_err(|e| {
            UpgradeError::Other(Error::Transport(format!(
                "error: unable to upgrade connection: {e}"
            )))
        })?;
        Ok(Upgraded {
            headers,
            io: TokioIo::new(io),
        })
    }
}

/// The server's refusal as client-go's SPDY upgrader reports it: the `Status` it sent
/// as a server error, else `unable to upgrade connection: ` and its text.
fn upgrade_failure(status: http::StatusCode, body: &[u8]) -> Error {
    let is_status = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v["kind"] == "Status");
    if is_status {
        return status_error(status, body);
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        text
    };
    Error::Transport(format!("error: unable to upgrade connection: {text}"))
}
