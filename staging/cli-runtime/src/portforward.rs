//! Port forwarding (upstream `client-go/tools/portforward`): local listeners whose
//! connections each become a pair of streams (error, data) to the pod's port over one
//! SPDY connection. The connection is SPDY tunneled in WebSocket messages
//! (`SPDY/3.1+portforward.k8s.io`, what apiservers since v1.31 accept) or, when the
//! server does not switch protocols, plain SPDY (`portforward.k8s.io`).
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false` goes to SPDY directly.

use crate::client::{Error, RestClient};
use crate::remotecommand::feature_disabled;
use crate::upgrade::{Protocol, UpgradeError};
use apimachinery::httpstream::{self as hs, spdy, wsstream};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One `[LOCAL]:REMOTE` pair; local 0 picks a free port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardedPort {
    pub local: u16,
    pub remote: u16,
}

fn err(m: impl std::fmt::Display) -> Error {
    Error::Transport(format!("error: {m}"))
}

/// Connects to the pod's `portforward` subresource at `path`.
pub async fn dial(client: &RestClient, path: &str) -> Result<spdy::Connection, Error> {
    if !feature_disabled("KUBECTL_PORT_FORWARD_WEBSOCKETS") {
        match client
            .upgrade(
                http::Method::GET,
                path,
                Protocol::WebSocket(&[hs::PORT_FORWARD_TUNNELING_PROTOCOL]),
            )
            .await
        {
            Ok(up) => {
                let negotiated = up
                    .headers
                    .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if negotiated != hs::PORT_FORWARD_TUNNELING_PROTOCOL {
                    return Err(err(format!(
                        "unable to upgrade websocket connection: invalid protocol {negotiated:?}"
                    )));
                }
                return Ok(spdy::Connection::new(wsstream::binary_stream(
                    up.io,
                    wsstream::Role::Client,
                )));
            }
            Err(UpgradeError::Failure(_)) => {}
            Err(UpgradeError::Other(e)) => return Err(e),
        }
    }
    let up = client
        .upgrade(
            http::Method::POST,
            path,
            Protocol::Spdy(&[hs::PORT_FORWARD_PROTOCOL_V1]),
        )
        .await
        .map_err(UpgradeError::into_error)?;
    Ok(spdy::Connection::new(up.io))
}

/// The listeners for `--address` (localhost: 127.0.0.1 and ::1, either may fail).
async fn listen(addresses: &[String], port: u16) -> Result<Vec<TcpListener>, Error> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addresses {
        if a == "localhost" {
            ips.push(IpAddr::from([127, 0, 0, 1]));
            ips.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        } else {
            ips.push(
                a.parse()
                    .map_err(|_| err(format!("{a} is not a valid IP")))?,
            );
        }
    }
    let mut out = Vec::new();
    let mut last = None;
    for ip in ips {
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(l) => out.push(l),
            Err(e) => last = Some(e),
        }
    }
    if out.is_empty() {
        return Err(err(format!(
            "unable to listen on any of the requested ports: [{{{port} 0}}]{}",
            last.map(|e| format!(": {e}")).unwrap_or_default()
        )));
    }
    Ok(out)
}

/// Serves the forwards until the connection to the pod is lost; `ready` is told once
/// every listener is up.
pub async fn forward(
    conn: spdy::Connection,
    addresses: &[String],
    ports: &[ForwardedPort],
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Error> {
    let request_id = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in ports {
        let listeners = listen(addresses, p.local).await?;
        for l in listeners {
            let local = l.local_addr().map_err(err)?;
            println!("Forwarding from {local} -> {}", p.remote);
            let _ = std::io::stdout().flush();
            let (conn, ids, remote) = (conn.clone(), request_id.clone(), p.remote);
            tasks.push(tokio::spawn(async move {
                while let Ok((sock, _)) = l.accept().await {
                    println!("Handling connection for {}", local.port());
                    let _ = std::io::stdout().flush();
                    let id = ids.fetch_add(1, Ordering::SeqCst);
                    let conn = conn.clone();
                    tokio::spawn(handle(conn, sock, local.port(), remote, id));
                }
            }));
        }
    }
    if let Some(r) = ready {
        let _ = r.send(());
    }
    conn.closed().await;
    for t in tasks {
        t.abort();
    }
    Err(err("lost connection to pod"))
}

/// One local connection: an error stream and a data stream for the remote port.
async fn handle(conn: spdy::Connection, sock: TcpStream, local: u16, remote: u16, id: u64) {
    let headers = |kind: &str| {
        vec![
            (hs::STREAM_TYPE.to_ascii_lowercase(), kind.to_string()),
            (hs::PORT_HEADER.to_string(), remote.to_string()),
            (
                hs::PORT_FORWARD_REQUEST_ID_HEADER.to_ascii_lowercase(),
                id.to_string(),
            ),
        ]
    };
    let mut error = match conn.open(headers(hs::STREAM_TYPE_ERROR)).await {
        Ok(s) => s,
        Err(e) => {
            handle_error(&format!(
                "error creating error stream for port {local} -> {remote}: {e}"
            ));
            return;
        }
    };
    // Nothing is written to the error stream.
    let _ = error.close().await;
    let mut data = match conn.open(headers(hs::STREAM_TYPE_DATA)).await {
        Ok(s) => s,
        Err(e) => {
            handle_error(&format!(
                "error creating forwarding stream for port {local} -> {remote}: {e}"
            ));
            error.reset().await;
            return;
        }
    };
    let (mut rd, mut wr) = sock.into_split();
    let to_pod = data.writer();
    // Local to pod until the local side stops sending; then the pod reads EOF.
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || to_pod.write(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_pod.close().await;
    });
    let downstream = async {
        while let Some(chunk) = data.read().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let errors = async {
        let message = error.read_to_end().await;
        if !message.is_empty() {
            handle_error(&format!(
                "an error occurred forwarding {local} -> {remote}: {}",
                String::from_utf8_lossy(&message)
            ));
        }
    };
    // As client-go: the forward is over once the pod's side is done sending.
    tokio::join!(downstream, errors);
    upstream.abort();
    data.reset().await;
    error.reset().await;
}

/// client-go's `runtime.HandleError`: a klog error line on stderr.
fn handle_error(msg: &str) {
    crate::klog::line(
        'E',
        "portforward.go:424",
        &format!("\"Unhandled Error\" err={msg:?}"),
    );
}
