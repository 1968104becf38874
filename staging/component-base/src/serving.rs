//! The HTTPS endpoint every component serves besides its main work (upstream
//! `component-base` + `apiserver/pkg/server/healthz`): `/healthz`, `/livez`, `/readyz`
//! (with `?verbose` and per-check paths) and `/metrics`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Who may reach which path (upstream's delegated authentication and authorization):
/// `Err((code, Status JSON))` refuses the request.
#[async_trait::async_trait]
pub trait RequestAuthorizer: Send + Sync {
    /// `client_certs`: the chain the client presented in the TLS handshake (its key
    /// proven there; which CA vouches for it is for the authorizer to check). `query`
    /// tells a watch from a list.
    async fn authorize(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &hyper::HeaderMap,
        client_certs: &[CertificateDer<'static>],
    ) -> Result<(), (u16, String)>;
}

pub struct Endpoints {
    /// Checks of `/healthz` and `/livez` (a `ping` check is always there).
    pub live: Vec<(String, Check)>,
    /// Further checks of `/readyz`.
    pub ready: Vec<(String, Check)>,
    /// The exposition of `/metrics` and its content type.
    pub metrics: Arc<dyn Fn() -> (String, &'static str) + Send + Sync>,
    /// Checks every request first (None: everything is open).
    pub authorizer: Option<Arc<dyn RequestAuthorizer>>,
    /// Serves every other path (an extension API server's API); None: 404.
    pub api: Option<Arc<dyn ApiHandler>>,
}

/// What an extension API server serves besides the health and metrics endpoints.
#[async_trait::async_trait]
pub trait ApiHandler: Send + Sync {
    async fn serve(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>>;
}

fn text(code: u16, body: String, content_type: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

impl Endpoints {
    fn health(&self, path: &str, query: &str, ready: bool) -> Response<Full<Bytes>> {
        let mut checks: Vec<(&str, Result<(), String>)> = vec![("ping", Ok(()))];
        checks.extend(self.live.iter().map(|(n, c)| (n.as_str(), c())));
        if ready {
            checks.extend(self.ready.iter().map(|(n, c)| (n.as_str(), c())));
        }
        let endpoint = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        if let Some(single) = path.trim_start_matches('/').split_once('/').map(|(_, c)| c) {
            return match checks.iter().find(|(n, _)| *n == single) {
                Some((_, Ok(()))) => text(200, "ok".into(), "text/plain; charset=utf-8"),
                Some((n, Err(e))) => text(
                    500,
                    format!("internal server error: {n} failed: {e}\n"),
                    "text/plain; charset=utf-8",
                ),
                None => text(
                    404,
                    "404 page not found\n".into(),
                    "text/plain; charset=utf-8",
                ),
            };
        }
        let failed = checks.iter().any(|(_, r)| r.is_err());
        let verbose = query
            .split('&')
            .any(|kv| kv == "verbose" || kv.starts_with("verbose="));
        if !failed && !verbose {
            return text(200, "ok".into(), "text/plain; charset=utf-8");
        }
        let mut body = String::new();
        for (n, r) in &checks {
            match r {
                Ok(()) => body.push_str(&format!("[+]{n} ok\n")),
                Err(_) => body.push_str(&format!("[-]{n} failed: reason withheld\n")),
            }
        }
        if failed {
            body.push_str(&format!("{endpoint} check failed\n"));
            text(500, body, "text/plain; charset=utf-8")
        } else {
            body.push_str(&format!("{endpoint} check passed\n"));
            text(200, body, "text/plain; charset=utf-8")
        }
    }

    async fn route(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let own = matches!(
            req.uri().path(),
            "/metrics" | "/healthz" | "/livez" | "/readyz"
        ) || ["/healthz/", "/livez/", "/readyz/"]
            .iter()
            .any(|p| req.uri().path().starts_with(p));
        match &self.api {
            Some(api) if !own => api.serve(req).await,
            _ => self.handle(&req),
        }
    }

    fn handle(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or_default();
        match path {
            "/metrics" => {
                let (body, content_type) = (self.metrics)();
                text(200, body, content_type)
            }
            p if p == "/healthz"
                || p.starts_with("/healthz/")
                || p == "/livez"
                || p.starts_with("/livez/") =>
            {
                self.health(p, query, false)
            }
            p if p == "/readyz" || p.starts_with("/readyz/") => self.health(p, query, true),
            _ => text(
                404,
                "404 page not found\n".into(),
                "text/plain; charset=utf-8",
            ),
        }
    }
}

/// The TLS configuration for `--tls-cert-file`/`--tls-private-key-file`, or a
/// self-signed pair `<base>.crt/.key` in `cert_dir`. With `client_roots` (every CA
/// whose clients may authenticate by certificate) client certificates are requested;
/// the handshake only proves the client holds the key, the authorizer checks the chain.
pub fn tls_config(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
    cert_dir: &std::path::Path,
    base: &str,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let (crt, key) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => crate::tls::ensure_self_signed(
            cert_dir,
            base,
            &["localhost".into(), "127.0.0.1".into()],
        )?,
        _ => {
            return Err("--tls-cert-file and --tls-private-key-file must be given together".into());
        }
    };
    let (certs, key) = crate::tls::load_pem(&crt, &key)?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?;
    let mut cfg = match client_roots.is_empty() {
        true => cfg.with_no_client_auth(),
        false => cfg.with_client_cert_verifier(Arc::new(crate::x509_verify::RequestClientCert(
            crate::x509_verify::ClientCaVerifier::new(client_roots)?,
        ))),
    }
    .with_single_cert(certs, key)
    .map_err(|e| format!("serving certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves the endpoints over HTTPS until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    endpoints: Arc<Endpoints>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "serving securely");
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = &mut shutdown => return Ok(()),
        };
        let (acceptor, endpoints) = (acceptor.clone(), endpoints.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let chain: Arc<Vec<CertificateDer<'static>>> = Arc::new(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect(),
            );
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (endpoints, chain) = (endpoints.clone(), chain.clone());
                async move {
                    if let Some(auth) = &endpoints.authorizer
                        && let Err((code, body)) = auth
                            .authorize(
                                req.method().as_str(),
                                req.uri().path(),
                                req.uri().query().unwrap_or_default(),
                                req.headers(),
                                &chain,
                            )
                            .await
                    {
                        return Ok::<_, std::convert::Infallible>(text(
                            code,
                            body,
                            "application/json",
                        ));
                    }
                    Ok(endpoints.route(req).await)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
