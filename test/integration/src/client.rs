//! A small HTTPS client for tests (loopback only; accepts the server's self-signed cert).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    pub port: u16,
    tls: tokio_rustls::TlsConnector,
    /// A bearer token sent with every request (servers without anonymous access).
    pub token: Option<String>,
    /// Further headers sent with every request.
    pub headers: Vec<(String, String)>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A TLS connector that accepts the test server's self-signed certificate (loopback only).
pub fn tls_connector() -> tokio_rustls::TlsConnector {
    apiserver::proxy::unverified_tls()
}

impl Client {
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(String::from);
        self
    }

    /// Presents this client certificate (PEM files) in the TLS handshake.
    pub fn with_client_cert(mut self, cert: &std::path::Path, key: &std::path::Path) -> Self {
        let (certs, key) = apiserver::server::tls::load_pem(cert, key).expect("client cert");
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(apiserver::proxy::AcceptAny))
        .with_client_auth_cert(certs, key)
        .expect("client cert");
        self.tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn authorize(&self, req: http::request::Builder) -> http::request::Builder {
        let mut req = match &self.token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        };
        for (k, v) in &self.headers {
            // Raw bytes, so tests can send what a Go client may (non-ASCII values).
            let v = http::HeaderValue::from_bytes(v.as_bytes()).expect("header value");
            req = req.header(k.as_str(), v);
        }
        req
    }

    pub fn new(port: u16) -> Self {
        Self {
            port,
            tls: tls_connector(),
            token: None,
            headers: Vec::new(),
        }
    }

    /// One keep-alive HTTP/1.1 connection (for clients that send many requests).
    pub async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        self.try_connect().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// An HTTP/2 connection (prior knowledge over TLS: the server tells the protocols apart
    /// by the client's preface), as client-go multiplexes requests and watches on one.
    pub async fn connect_h2(&self) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let (send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        send
    }

    /// A GET request with this client's credentials and headers, for a connection of one's own.
    pub fn get_request(&self, path: &str) -> Request<Full<Bytes>> {
        let req = Request::builder().uri(format!("https://localhost{path}"));
        self.authorize(req).body(Full::new(Bytes::new())).unwrap()
    }

    async fn try_connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e:?}"))?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(send)
    }

    /// The status of a GET, or None when no connection could be made (a server that is
    /// still starting).
    pub async fn try_status(&self, path: &str) -> Option<u16> {
        let mut send = self.try_connect().await.ok()?;
        let req = Request::builder().uri(path).header("host", "localhost");
        let req = self.authorize(req).body(Full::new(Bytes::new())).ok()?;
        Some(send.send_request(req).await.ok()?.status().as_u16())
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Reply {
        self.request_accepting(method, path, content_type, "application/json", body)
            .await
    }

    /// A request with a given `Accept` header.
    pub async fn request_accepting(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut send = self.connect().await;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .header("accept", accept);
        let req = self.authorize(req).body(Full::new(body.into())).unwrap();
        let resp = send.send_request(req).await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, "application/json", Bytes::new())
            .await
    }

    pub async fn send_json(&self, method: &str, path: &str, v: &Value) -> Reply {
        self.request(
            method,
            path,
            "application/json",
            serde_json::to_vec(v).unwrap(),
        )
        .await
    }

    /// POSTs an object that must be created (201); returns it.
    pub async fn create(&self, path: &str, v: &Value) -> Value {
        let r = self.send_json("POST", path, v).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.text());
        r.json()
    }

    /// A JSON merge patch.
    pub async fn merge_patch(&self, path: &str, v: &Value) -> Reply {
        self.request("PATCH", path, "application/merge-patch+json", v.to_string())
            .await
    }

    /// Opens a watch; yields each newline-delimited event.
    pub async fn watch(&self, path: &str) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let mut send = self.connect().await;
        let req = Request::builder().uri(path).header("host", "localhost");
        let req = self.authorize(req).body(Full::new(Bytes::new())).unwrap();
        let resp = send.send_request(req).await.expect("watch request");
        assert_eq!(resp.status().as_u16(), 200, "watch {path}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let _keep = send;
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}
