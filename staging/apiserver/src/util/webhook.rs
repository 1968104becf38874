//! Calling out to webhooks (upstream `apiserver/pkg/util/webhook`): a JSON POST over HTTPS
//! to a URL or an in-cluster Service, the server verified against the configuration's
//! `caBundle`, bounded by the webhook's timeout.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Where a webhook is served.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
    /// The name the server certificate must carry (the URL's host, or
    /// `<service>.<namespace>.svc` for a Service reference).
    pub server_name: String,
}

impl Endpoint {
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.server_name.is_empty() {
            &self.host
        } else {
            &self.server_name
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }

    /// Parses `https://host[:port]/path` (a `clientConfig.url`).
    pub fn parse_url(url: &str) -> Result<Endpoint, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("unsupported URL {url:?}: the scheme must be https"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in {url:?}"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        Ok(Endpoint {
            https,
            host: host.to_string(),
            port,
            path: path.to_string(),
            server_name: String::new(),
        })
    }
}

/// Where a `clientConfig` points: its URL, or its Service's cluster IP (verified as
/// `<service>.<namespace>.svc`, as upstream's service resolver).
pub async fn resolve(
    client_config: &Value,
    services: &crate::registry::generic::Registry,
) -> Result<Endpoint, String> {
    if let Some(url) = client_config["url"].as_str() {
        return Endpoint::parse_url(url);
    }
    let svc = &client_config["service"];
    let (ns, name) = (
        svc["namespace"].as_str().unwrap_or_default(),
        svc["name"].as_str().unwrap_or_default(),
    );
    let service = services
        .get(Some(ns), name)
        .await
        .map_err(|_| format!("service \"{name}\" not found"))?;
    let ip = service["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .ok_or_else(|| format!("service {ns}/{name} has no cluster IP"))?;
    Ok(Endpoint {
        https: true,
        host: ip.to_string(),
        port: svc["port"].as_u64().unwrap_or(443) as u16,
        path: svc["path"].as_str().unwrap_or("/").to_string(),
        server_name: format!("{name}.{ns}.svc"),
    })
}

fn tls_for(ca_bundle: &[u8]) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = std::io::BufReader::new(ca_bundle);
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid caBundle: {e}"))?;
    for c in certs {
        roots.add(c).map_err(|e| format!("invalid caBundle: {e}"))?;
    }
    if roots.is_empty() {
        return Err("x509: certificate signed by unknown authority".into());
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// POSTs `body` and returns the decoded JSON answer. Errors read like Go's
/// `Post "<url>": <cause>` so they can be quoted in upstream's messages.
pub async fn post_json(
    ep: &Endpoint,
    ca_bundle: &[u8],
    body: &Value,
    timeout: Duration,
) -> Result<Value, String> {
    let url = ep.url();
    let call = async {
        let tcp = tokio::net::TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| format!("dial tcp {}:{}: {e}", ep.host, ep.port))?;
        let payload = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let req = Request::post(&ep.path)
            .header("host", format!("{}:{}", ep.host, ep.port))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        let resp = if ep.https {
            let name = if ep.server_name.is_empty() {
                &ep.host
            } else {
                &ep.server_name
            };
            let name = ServerName::try_from(name.clone()).map_err(|e| e.to_string())?;
            let tls = tls_for(ca_bundle)?
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            send(hyper_util::rt::TokioIo::new(tls), req).await?
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await?
        };
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "the server responded with the status code {} but did not return more information",
                status.as_u16()
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid response body: {e}"))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("Post {url:?}: {e}")),
        Err(_) => Err(format!("Post {url:?}: context deadline exceeded")),
    }
}

async fn send<T>(
    io: hyper_util::rt::TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse_url("https://127.0.0.1:8443/mutate?x=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 8443, "/mutate?x=1")
        );
        let e = Endpoint::parse_url("https://hooks.example").unwrap();
        assert_eq!((e.port, e.path.as_str()), (443, "/"));
        assert!(Endpoint::parse_url("ftp://x").is_err());
    }
}
