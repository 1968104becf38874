//! The kubelet API (upstream `pkg/kubelet/server`): HTTPS on `port` (10250) with
//! `/healthz`, `/pods`, `/runningpods/`, `/metrics`, `/configz`, `/stats/summary`,
//! `/containerLogs/{ns}/{pod}/{container}`, and `/exec`, `/attach`, `/portForward`
//! proxied to the runtime's streaming server; plus the plain `/healthz` on
//! `healthzBindAddress:healthzPort` (10248). Requests are authenticated (anonymous if
//! enabled, bearer tokens by TokenReview) and authorized (AlwaysAllow, or a
//! SubjectAccessReview on `nodes/<subresource>` as upstream's Webhook mode).

mod auth;
mod container_logs;
pub mod logs;
mod pods;
mod stats;
mod streaming;

use crate::cri::api;
use crate::kubelet::Kubelet;
use bytes::Bytes;
use component_base::body::{Body, full};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

fn text(code: u16, body: impl Into<Bytes>, ct: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", ct)
        .body(full(body.into()))
        .unwrap()
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    url_pairs(q).into_iter().collect()
}

fn url_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).to_string()
    };
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// Upstream's subresource of `nodes` a kubelet path is authorized as.
fn subresource(path: &str) -> &'static str {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "stats" => "stats",
        "metrics" => "metrics",
        "logs" => "log",
        "spec" => "spec",
        "configz" => "configz",
        "healthz" => "healthz",
        "pods" => "pods",
        "checkpoint" => "checkpoint",
        _ => "proxy",
    }
}

impl Kubelet {
    async fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        peer: Option<(String, Vec<String>)>,
    ) -> Response<Body> {
        let path = req.uri().path().to_string();
        if path == "/healthz" || path.starts_with("/healthz/") {
            return text(200, "ok", "text/plain; charset=utf-8");
        }
        if let Err(r) = self.authorize(&req, peer).await {
            return r;
        }
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(String::from)
            .collect();
        let q = query_map(req.uri().query());
        match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["pods"] | ["pods", ""] => self.pods_list(false),
            ["runningpods", ..] => self.pods_list(true),
            ["metrics"] => {
                let mut reg = crate::metrics::METRICS.registry();
                let process = component_base::metrics::ProcessMetrics::default();
                process.register(&mut reg);
                process.refresh();
                let (body, ct) = component_base::metrics::render(&reg);
                text(200, body, ct)
            }
            ["configz"] => text(
                200,
                json!({"kubeletconfig": self.cfg}).to_string(),
                "application/json",
            ),
            ["stats", "summary"] => self.summary().await,
            ["metrics", "resource"] => self.resource_metrics().await,
            ["containerLogs", ns, pod, c] => self.container_logs(ns, pod, c, &q).await,
            ["exec", ns, pod, c] | ["exec", ns, pod, _, c] => {
                self.stream(req, "exec", ns, pod, c).await
            }
            ["attach", ns, pod, c] | ["attach", ns, pod, _, c] => {
                self.stream(req, "attach", ns, pod, c).await
            }
            ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
                self.stream(req, "portForward", ns, pod, "").await
            }
            _ => status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            ),
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Serves the kubelet API until `shutdown` fires.
pub async fn serve(
    k: Arc<Kubelet>,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "Starting to listen");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, k) = (acceptor.clone(), k.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            // The user of a verified client certificate (CN, O as groups).
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(component_base::authentication::x509_user)
                .map(|u| (u.name, u.groups));
            let service = hyper::service::service_fn(move |req| {
                let (k, peer) = (k.clone(), peer.clone());
                async move { Ok::<_, std::convert::Infallible>(k.handle(req, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The plain-HTTP `/healthz` (healthzBindAddress:healthzPort).
pub async fn serve_healthz(
    addr: std::net::SocketAddr,
    healthy: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let healthy = healthy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let healthy = healthy.clone();
                async move {
                    let r = if req.uri().path() == "/healthz" {
                        match healthy() {
                            Ok(()) => text(200, "ok", "text/plain; charset=utf-8"),
                            Err(e) => text(
                                500,
                                format!("[+]ping ok\n[+]log ok\n{e}\nhealthz check failed\n"),
                                "text/plain; charset=utf-8",
                            ),
                        }
                    } else {
                        text(404, "404 page not found", "text/plain; charset=utf-8")
                    };
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
