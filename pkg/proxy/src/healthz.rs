//! kube-proxy's health server (upstream `pkg/proxy/healthcheck/proxier_health.go`):
//! `/healthz` and `/livez` on `healthzBindAddress` (10256) answer 200 with
//! `lastUpdated`/`currentTime` while syncs keep up (503 once a sync is overdue by more
//! than twice the sync period), and `/metrics` on `metricsBindAddress` (10249).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Health {
    last: Mutex<Option<(Instant, jiff::Timestamp)>>,
    pub timeout: Duration,
}

impl Health {
    pub fn new(sync_period: Duration) -> Self {
        Health {
            last: Mutex::new(None),
            timeout: sync_period * 2,
        }
    }

    pub fn synced(&self) {
        *self.last.lock().unwrap() = Some((Instant::now(), jiff::Timestamp::now()));
    }

    fn answer(&self) -> (u16, String) {
        let now = jiff::Timestamp::now();
        let last = *self.last.lock().unwrap();
        let (healthy, updated) = match last {
            Some((at, ts)) => (at.elapsed() <= self.timeout, ts.to_string()),
            None => (false, String::new()),
        };
        let body = serde_json::json!({"lastUpdated": updated, "currentTime": now.to_string(), "nodeEligible": true});
        (if healthy { 200 } else { 503 }, body.to_string())
    }
}

/// A path's answer: (status, body, content type).
type Handler = std::sync::Arc<dyn Fn(&str) -> (u16, String, &'static str) + Send + Sync>;

async fn serve_with(addr: std::net::SocketAddr, handler: Handler) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let h = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (code, body, ct) = h(req.uri().path());
                async move {
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .status(code)
                            .header("content-type", ct)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap(),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// Serves `/healthz` and `/livez`.
pub async fn serve_health(
    addr: std::net::SocketAddr,
    health: std::sync::Arc<Health>,
) -> std::io::Result<()> {
    serve_with(
        addr,
        std::sync::Arc::new(move |path: &str| match path {
            "/healthz" | "/livez" => {
                let (c, b) = health.answer();
                (c, b, "application/json")
            }
            _ => (
                404,
                "404 page not found\n".into(),
                "text/plain; charset=utf-8",
            ),
        }),
    )
    .await
}

/// Serves `/metrics` (and a plain `/healthz`).
pub async fn serve_metrics(addr: std::net::SocketAddr) -> std::io::Result<()> {
    serve_with(
        addr,
        std::sync::Arc::new(|path: &str| match path {
            "/metrics" => {
                let mut reg = crate::metrics::METRICS.registry();
                let process = component_base::metrics::ProcessMetrics::default();
                process.register(&mut reg);
                process.refresh();
                let (body, ct) = component_base::metrics::render(&reg);
                (200, body, ct)
            }
            "/healthz" => (200, "ok".into(), "text/plain; charset=utf-8"),
            _ => (
                404,
                "404 page not found\n".into(),
                "text/plain; charset=utf-8",
            ),
        }),
    )
    .await
}
