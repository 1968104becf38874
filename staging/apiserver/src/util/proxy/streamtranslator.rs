//! exec and attach for WebSocket clients (upstream `streamtranslator.go`, the
//! `TranslateStreamCloseWebsocketRequests` feature, on since v1.30): the client speaks
//! `v5.channel.k8s.io` to us and we speak SPDY to the kubelet, channel by channel;
//! closing channel 0 half-closes the remote stdin, and the remote command's `Status`
//! comes back on the error channel.

use super::accept_websocket;
use crate::endpoints::negotiation::Body;
use apimachinery::StatusError;
use apimachinery::httpstream::{self as hs, spdy, wsstream};
use component_base::proxy::{Target, UpgradeOutcome};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;

/// Which streams the client asked for (its query, before the kubelet's renaming).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Options {
    pub fn from_query(raw: &str) -> Options {
        let mut o = Options::default();
        for pair in raw.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let on = v == "true" || v == "1";
            match k {
                "stdin" => o.stdin = on,
                "stdout" => o.stdout = on,
                "stderr" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        o
    }
}

/// Whether this request is one to translate: a WebSocket offering v5.
pub fn wants_translation<B>(req: &Request<B>) -> bool {
    super::websocket_protocols(req)
        .iter()
        .any(|p| p == hs::STREAM_PROTOCOL_V5)
}

/// Accepts the client's WebSocket and runs the translation to `target` (the kubelet's
/// exec or attach URL) once it is upgraded.
pub fn translate(
    mut req: Request<hyper::body::Incoming>,
    target: Target,
    tls: tokio_rustls::TlsConnector,
) -> Result<Response<Body>, StatusError> {
    let opts = Options::from_query(req.uri().query().unwrap_or_default());
    let (resp, on_upgrade) = accept_websocket(&mut req, hs::STREAM_PROTOCOL_V5)?;
    tokio::spawn(async move {
        if let Ok(client) = on_upgrade.await {
            run(TokioIo::new(client), target, tls, opts).await;
        }
    });
    Ok(resp)
}

fn failure(message: &str) -> Vec<u8> {
    serde_json::json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
        .to_string()
        .into_bytes()
}

type WsWriter<W> = Arc<Mutex<wsstream::Writer<W>>>;

async fn finish<W: AsyncWrite + Unpin>(w: &WsWriter<W>, status: &[u8]) {
    let mut w = w.lock().await;
    let _ = w.send_channel(wsstream::ERROR_CHANNEL, status).await;
    let _ = w
        .send(&wsstream::Message::Close(Some((1000, String::new()))))
        .await;
    let _ = w.shutdown().await;
}

async fn run<IO>(io: IO, target: Target, tls: tokio_rustls::TlsConnector, o: Options)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let writer = Arc::new(Mutex::new(wsstream::Writer::new(
        wr,
        wsstream::Role::Server,
    )));
    let versions = [
        hs::STREAM_PROTOCOL_V4,
        hs::STREAM_PROTOCOL_V3,
        hs::STREAM_PROTOCOL_V2,
        hs::STREAM_PROTOCOL_V1,
    ];
    let headers: Vec<(&str, String)> = std::iter::once((
        hyper::header::UPGRADE.as_str(),
        spdy::UPGRADE_PROTOCOL.to_string(),
    ))
    .chain(
        versions
            .iter()
            .map(|v| (hs::HEADER_PROTOCOL_VERSION, v.to_string())),
    )
    .collect();
    let up = match component_base::proxy::upgrade(&target, tls, hyper::Method::POST, &headers).await
    {
        Ok(UpgradeOutcome::Upgraded(up)) => up,
        Ok(UpgradeOutcome::Refused(resp)) => {
            let code = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            // The kubelet's own Status when it sent one.
            let status = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) if v["kind"] == "Status" => body.to_vec(),
                _ => failure(&format!(
                    "unable to upgrade connection: {}",
                    String::from_utf8_lossy(&body).trim().to_string()
                        + if body.is_empty() { code.as_str() } else { "" }
                )),
            };
            return finish(&writer, &status).await;
        }
        Err(e) => return finish(&writer, &failure(&e.to_string())).await,
    };
    let version = up
        .headers
        .get(hs::HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(hs::STREAM_PROTOCOL_V1)
        .to_string();
    let conn = spdy::Connection::new(up.io);
    let open = |kind: &'static str| {
        let conn = conn.clone();
        async move {
            conn.open(vec![(
                hs::STREAM_TYPE.to_ascii_lowercase(),
                kind.to_string(),
            )])
            .await
            .map_err(|e| format!("error creating {kind} stream: {e}"))
        }
    };
    let streams = async {
        let error = open(hs::STREAM_TYPE_ERROR).await?;
        let stdin = if o.stdin {
            Some(open(hs::STREAM_TYPE_STDIN).await?)
        } else {
            None
        };
        let stdout = if o.stdout {
            Some(open(hs::STREAM_TYPE_STDOUT).await?)
        } else {
            None
        };
        let stderr = if o.stderr && !o.tty {
            Some(open(hs::STREAM_TYPE_STDERR).await?)
        } else {
            None
        };
        let resize =
            if o.tty && version != hs::STREAM_PROTOCOL_V1 && version != hs::STREAM_PROTOCOL_V2 {
                Some(open(hs::STREAM_TYPE_RESIZE).await?)
            } else {
                None
            };
        Ok::<_, String>((error, stdin, stdout, stderr, resize))
    };
    let (mut error, stdin, stdout, stderr, resize) = match streams.await {
        Ok(s) => s,
        Err(e) => return finish(&writer, &failure(&e)).await,
    };
    // As upstream's servers: an empty message on the lowest writable channel says the
    // streams are ready.
    if let Some(ch) = [
        (o.stdout, wsstream::STDOUT_CHANNEL),
        (o.stderr && !o.tty, wsstream::STDERR_CHANNEL),
    ]
    .iter()
    .find(|(on, _)| *on)
    .map(|(_, ch)| *ch)
    {
        let _ = writer.lock().await.send_channel(ch, &[]).await;
    }
    // Client to kubelet: stdin, its close, resizes; pings answered.
    let (stdin_w, resize_w) = (
        stdin.as_ref().map(|s| s.writer()),
        resize.as_ref().map(|s| s.writer()),
    );
    let pong = writer.clone();
    let inbound = tokio::spawn(async move {
        let mut reader = wsstream::Reader::new(rd);
        while let Ok(Some(m)) = reader.next().await {
            match m {
                wsstream::Message::Binary(b) if !b.is_empty() => {
                    match (b[0], &stdin_w, &resize_w) {
                        (wsstream::STDIN_CHANNEL, Some(w), _)
                            if w.write(&b[1..]).await.is_err() =>
                        {
                            break;
                        }
                        (wsstream::RESIZE_CHANNEL, _, Some(w)) => {
                            let _ = w.write(&b[1..]).await;
                        }
                        (wsstream::CLOSE_CHANNEL, Some(w), _)
                            if b.get(1) == Some(&wsstream::STDIN_CHANNEL) =>
                        {
                            let _ = w.close().await;
                        }
                        _ => {}
                    }
                }
                wsstream::Message::Ping(p) => {
                    let _ = pong.lock().await.send(&wsstream::Message::Pong(p)).await;
                }
                wsstream::Message::Close(_) => break,
                _ => {}
            }
        }
    });
    // Kubelet to client: stdout and stderr, then the result.
    let relay = |stream: Option<spdy::Stream>, ch: u8| {
        let w = writer.clone();
        async move {
            if let Some(mut s) = stream {
                while let Some(chunk) = s.read().await {
                    if w.lock().await.send_channel(ch, &chunk).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let ((), (), message) = tokio::join!(
        relay(stdout, wsstream::STDOUT_CHANNEL),
        relay(stderr, wsstream::STDERR_CHANNEL),
        error.read_to_end()
    );
    let status = if message.is_empty() {
        br#"{"metadata":{},"status":"Success"}"#.to_vec()
    } else if version == hs::STREAM_PROTOCOL_V4 || version == hs::STREAM_PROTOCOL_V5 {
        message
    } else {
        failure(&String::from_utf8_lossy(&message))
    };
    finish(&writer, &status).await;
    inbound.abort();
    drop((stdin, resize));
    conn.close().await;
}
