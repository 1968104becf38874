//! A gRPC channel to a unix socket (`unix:///run/containerd/containerd.sock`), as the
//! CRI runtime and the CSI drivers are reached; connecting is lazy, so the peer may
//! come up later, and every call is bounded by `timeout`.

use hyper_util::rt::TokioIo;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

pub fn unix_channel(endpoint: &str, timeout: Duration) -> Result<Channel, String> {
    let path = endpoint
        .strip_prefix("unix://")
        .ok_or_else(|| {
            format!("unsupported container runtime endpoint {endpoint:?}: only unix:// sockets")
        })?
        .to_string();
    Ok(Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .timeout(timeout)
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        })))
}

/// The connections to a unix socket a gRPC server serves (a stale socket file removed
/// first, its directory created), for `serve_with_incoming`.
pub fn unix_incoming(
    path: &std::path::Path,
) -> Result<impl futures::Stream<Item = std::io::Result<tokio::net::UnixStream>> + use<>, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    Ok(futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    }))
}
