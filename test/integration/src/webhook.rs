//! A webhook server for tests (admission and conversion webhooks): HTTPS on loopback
//! with a self-signed certificate for 127.0.0.1 (its PEM is the `caBundle`), answering
//! each JSON request with `answer(path, request)` and keeping every request it got.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub type Seen = Arc<Mutex<Vec<Value>>>;

pub struct WebhookServer {
    pub port: u16,
    /// The base64 `caBundle`.
    pub ca_bundle: String,
    pub seen: Seen,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn serve(dir: &std::path::Path, answer: fn(&str, &Value) -> Value) -> WebhookServer {
    let (crt, key) =
        apiserver::server::tls::ensure_self_signed(dir, "webhook", &["127.0.0.1".into()]).unwrap();
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&crt).unwrap());
    let mut cfg = (*apiserver::server::tls::server_config(&crt, &key, &[]).unwrap()).clone();
    cfg.alpn_protocols.clear();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                        log.lock().unwrap().push(review.clone());
                        let out = answer(&path, &review).to_string();
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            out,
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    WebhookServer {
        port,
        ca_bundle,
        seen,
        task,
    }
}
