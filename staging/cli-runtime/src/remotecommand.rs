//! Remote commands: exec and attach streams (upstream `client-go/tools/remotecommand`).
//! WebSocket first (`v5.channel.k8s.io`, what apiservers since v1.30 translate), SPDY
//! (`v5`…`v1` over `SPDY/3.1`) when the server does not switch protocols, as client-go's
//! fallback executor does. `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` goes to SPDY directly.

use crate::client::{Error, RestClient};
use crate::upgrade::{Protocol, UpgradeError, Upgraded};
use apimachinery::httpstream::{self as hs, spdy, wsstream};
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};

/// A terminal's size as the resize channel carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

impl TermSize {
    fn json(&self) -> String {
        format!("{{\"Width\":{},\"Height\":{}}}", self.width, self.height)
    }
}

pub type Input = Box<dyn AsyncRead + Send + Unpin>;
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The local ends of a remote command.
#[derive(Default)]
pub struct Streams {
    pub stdin: Option<Input>,
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    pub tty: bool,
    /// Sizes to send while a TTY is attached (the first is the initial size).
    pub resize: Option<mpsc::Receiver<TermSize>>,
}

/// How a remote command ended, when not with success.
#[derive(Debug)]
pub enum ExecError {
    /// The command exited with this code (`command terminated with exit code N`).
    Exit(i32),
    Failed(Error),
}

impl From<Error> for ExecError {
    fn from(e: Error) -> Self {
        ExecError::Failed(e)
    }
}

fn failed(m: impl std::fmt::Display) -> ExecError {
    ExecError::Failed(Error::Transport(format!("error: {m}")))
}

const SPDY_PROTOCOLS: [&str; 5] = [
    hs::STREAM_PROTOCOL_V5,
    hs::STREAM_PROTOCOL_V4,
    hs::STREAM_PROTOCOL_V3,
    hs::STREAM_PROTOCOL_V2,
    hs::STREAM_PROTOCOL_V1,
];

/// Whether an opt-out environment variable (kubectl's `KUBECTL_*` feature gates) is off.
pub fn feature_disabled(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.eq_ignore_ascii_case("false"))
}

/// Runs the exec or attach at `path` (with its query) until the remote side ends.
pub async fn stream(client: &RestClient, path: &str, streams: Streams) -> Result<(), ExecError> {
    if !feature_disabled("KUBECTL_REMOTE_COMMAND_WEBSOCKETS") {
        match client
            .upgrade(
                http::Method::GET,
                path,
                Protocol::WebSocket(&[hs::STREAM_PROTOCOL_V5]),
            )
            .await
        {
            Ok(up) => return stream_websocket(up, streams).await,
            Err(UpgradeError::Failure(_)) => {}
            Err(UpgradeError::Other(e)) => return Err(e.into()),
        }
    }
    let up = client
        .upgrade(http::Method::POST, path, Protocol::Spdy(&SPDY_PROTOCOLS))
        .await
        .map_err(UpgradeError::into_error)?;
    stream_spdy(up, streams).await
}

/// The negotiated sub-protocol's version number (5 for `v5.channel.k8s.io`, 1 for the
/// unversioned one).
fn protocol_version(p: &str) -> u8 {
    p.strip_prefix('v')
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

async fn stream_spdy(up: Upgraded, mut s: Streams) -> Result<(), ExecError> {
    let negotiated = up
        .headers
        .get(hs::HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(hs::STREAM_PROTOCOL_V1)
        .to_string();
    let version = protocol_version(&negotiated);
    let conn = spdy::Connection::new(up.io);
    let open = |kind: &'static str| {
        let conn = conn.clone();
        let headers = vec![(hs::STREAM_TYPE.to_ascii_lowercase(), kind.to_string())];
        async move {
            conn.open(headers)
                .await
                .map_err(|e| failed(format!("error creating {kind} stream: {e}")))
        }
    };
    let mut error = open(hs::STREAM_TYPE_ERROR).await?;
    let stdin = match s.stdin.is_some() {
        true => Some(open(hs::STREAM_TYPE_STDIN).await?),
        false => None,
    };
    let stdout = match s.stdout.is_some() {
        true => Some(open(hs::STREAM_TYPE_STDOUT).await?),
        false => None,
    };
    let stderr = match s.stderr.is_some() && !s.tty {
        true => Some(open(hs::STREAM_TYPE_STDERR).await?),
        false => None,
    };
    let resize = match s.tty && version >= 3 {
        true => Some(open(hs::STREAM_TYPE_RESIZE).await?),
        false => None,
    };
    if let (Some(mut input), Some(remote)) = (s.stdin.take(), stdin.as_ref().map(|r| r.writer())) {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = input.read(&mut buf).await {
                if n == 0 || remote.write(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = remote.close().await;
        });
    }
    if let (Some(mut sizes), Some(remote)) = (s.resize.take(), resize.as_ref().map(|r| r.writer()))
    {
        tokio::spawn(async move {
            while let Some(size) = sizes.recv().await {
                if remote.write(size.json().as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
    let copy = |stream: Option<spdy::Stream>, out: Option<Output>| async move {
        if let (Some(mut stream), Some(mut out)) = (stream, out) {
            while let Some(chunk) = stream.read().await {
                if out.write_all(&chunk).await.is_err() {
                    break;
                }
                let _ = out.flush().await;
            }
        }
    };
    let error_text = async { error.read_to_end().await };
    let ((), (), message) = tokio::join!(
        copy(stdout, s.stdout.take()),
        copy(stderr, s.stderr.take()),
        error_text
    );
    drop(stdin);
    drop(resize);
    conn.close().await;
    decode_error(version, &message)
}

/// What the error stream said: nothing or Success for a clean end, a `Status` from v4
/// on, plain text before.
fn decode_error(version: u8, message: &[u8]) -> Result<(), ExecError> {
    if message.is_empty() {
        return Ok(());
    }
    if version < 4 {
        return Err(failed(String::from_utf8_lossy(message)));
    }
    let status: Value = serde_json::from_slice(message).map_err(|e| {
        failed(format!(
            "error stream protocol error: {e} in {:?}",
            String::from_utf8_lossy(message)
        ))
    })?;
    match status["status"].as_str() {
        Some("Success") => Ok(()),
        Some("Failure") if status["reason"] == "NonZeroExitCode" => {
            let code = status["details"]["causes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["reason"] == "ExitCode")
                .and_then(|c| c["message"].as_str())
                .and_then(|m| m.parse::<i32>().ok());
            match code {
                Some(rc) => Err(ExecError::Exit(rc)),
                None => Err(failed(format!(
                    "error stream protocol error: invalid exit code value {:?}",
                    status["details"]
                ))),
            }
        }
        Some("Failure") => Err(failed(status["message"].as_str().unwrap_or_default())),
        _ => Err(failed("error stream protocol error: unknown error")),
    }
}

async fn stream_websocket(up: Upgraded, mut s: Streams) -> Result<(), ExecError> {
    let negotiated = up
        .headers
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if negotiated != hs::STREAM_PROTOCOL_V5 {
        return Err(failed(format!(
            "invalid protocol, expected {}, got {negotiated:?}",
            hs::STREAM_PROTOCOL_V5
        )));
    }
    let (rd, wr) = tokio::io::split(up.io);
    let writer = Arc::new(Mutex::new(wsstream::Writer::new(
        wr,
        wsstream::Role::Client,
    )));
    let mut tasks = Vec::new();
    if let Some(mut input) = s.stdin.take() {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = input.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if w.lock()
                    .await
                    .send_channel(wsstream::STDIN_CHANNEL, &buf[..n])
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // v5's close signal: the remote stdin reads EOF.
            let _ = w
                .lock()
                .await
                .send_channel(wsstream::CLOSE_CHANNEL, &[wsstream::STDIN_CHANNEL])
                .await;
        }));
    }
    if let Some(mut sizes) = s.resize.take().filter(|_| s.tty) {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(size) = sizes.recv().await {
                let sent = w
                    .lock()
                    .await
                    .send_channel(wsstream::RESIZE_CHANNEL, size.json().as_bytes())
                    .await;
                if sent.is_err() {
                    break;
                }
            }
        }));
    }
    let mut reader = wsstream::Reader::new(rd);
    let mut error = Vec::new();
    loop {
        match reader.next().await {
            Ok(Some(wsstream::Message::Binary(m))) if m.len() > 1 => {
                let out = match m[0] {
                    wsstream::STDOUT_CHANNEL => s.stdout.as_mut(),
                    wsstream::STDERR_CHANNEL => s.stderr.as_mut(),
                    wsstream::ERROR_CHANNEL => {
                        error.extend_from_slice(&m[1..]);
                        None
                    }
                    _ => None,
                };
                if let Some(out) = out {
                    let _ = out.write_all(&m[1..]).await;
                    let _ = out.flush().await;
                }
            }
            Ok(Some(wsstream::Message::Ping(p))) => {
                let _ = writer.lock().await.send(&wsstream::Message::Pong(p)).await;
            }
            Ok(Some(wsstream::Message::Close(_))) | Ok(None) => break,
            Ok(Some(_)) => {}
            Err(e) if error.is_empty() => return Err(failed(format!("websocket: {e}"))),
            Err(_) => break,
        }
    }
    for t in tasks {
        t.abort();
    }
    {
        let mut w = writer.lock().await;
        let _ = w
            .send(&wsstream::Message::Close(Some((1000, String::new()))))
            .await;
        let _ = w.shutdown().await;
    }
    decode_error(5, &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_stream_decodes_as_client_go_does() {
        assert!(decode_error(4, b"").is_ok());
        assert!(decode_error(4, br#"{"status":"Success"}"#).is_ok());
        let exit = br#"{"status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code: 3","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert!(matches!(decode_error(5, exit), Err(ExecError::Exit(3))));
        let internal = br#"{"status":"Failure","reason":"InternalError","message":"Internal error occurred: error executing command in container: not found"}"#;
        match decode_error(4, internal) {
            Err(ExecError::Failed(e)) => assert_eq!(
                e.message(),
                "error: Internal error occurred: error executing command in container: not found"
            ),
            other => panic!("{other:?}"),
        }
        match decode_error(2, b"container not running") {
            Err(ExecError::Failed(e)) => assert_eq!(e.message(), "error: container not running"),
            other => panic!("{other:?}"),
        }
        assert_eq!(protocol_version("v4.channel.k8s.io"), 4);
        assert_eq!(protocol_version("channel.k8s.io"), 1);
    }
}
