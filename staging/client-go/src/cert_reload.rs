//! A client whose client certificate follows its files (client-go's `transport` with a
//! `GetClientCertificate` callback, as the kubelet's rotating client uses): every new TLS
//! connection presents the certificate and key the kubeconfig's `client-certificate` and
//! `client-key` files hold at that moment, so a rotated `kubelet-client-current.pem` is
//! used without restarting the component.

use kube::client::ConfigExt;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The certificate and key files, re-read when they change.
#[derive(Debug)]
pub struct FileCertResolver {
    cert: PathBuf,
    key: PathBuf,
    cached: Mutex<Option<(Stamp, Arc<CertifiedKey>)>>,
}

/// What tells a changed file: its (symlink-followed) modification time and size.
type Stamp = (Option<SystemTime>, u64, Option<SystemTime>, u64);

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let m = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    let (a, b) = m(cert);
    let (c, d) = m(key);
    (a, b, c, d)
}

impl FileCertResolver {
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        FileCertResolver {
            cert,
            key,
            cached: Mutex::new(None),
        }
    }

    /// The current pair, loaded again when either file changed.
    pub fn current(&self) -> Result<Arc<CertifiedKey>, String> {
        let now = stamp(&self.cert, &self.key);
        let mut cached = self.cached.lock().unwrap();
        if let Some((s, k)) = cached.as_ref()
            && *s == now
        {
            return Ok(k.clone());
        }
        let key = load_pair(&self.cert, &self.key)?;
        *cached = Some((now, key.clone()));
        Ok(key)
    }
}

/// A certificate chain and its private key from PEM files (one file may hold both).
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let (certs, der) = component_base::tls::load_pem(cert, key)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ResolvesClientCert for FileCertResolver {
    fn resolve(
        &self,
        _acceptable_issuers: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        match self.current() {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(error = e, "loading the client certificate");
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The `client-certificate` and `client-key` paths of the kubeconfig's current user,
/// relative paths resolved against the kubeconfig's directory; None when it embeds
/// data or authenticates otherwise.
pub fn certificate_files(kubeconfig: &Path) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("reading kubeconfig {}: {e}", kubeconfig.display()))?;
    let context = kc.current_context.clone().unwrap_or_default();
    let user = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    let Some(auth) = kc
        .auth_infos
        .iter()
        .find(|a| Some(&a.name) == user.as_ref())
        .and_then(|a| a.auth_info.as_ref())
    else {
        return Ok(None);
    };
    let dir = kubeconfig.parent().unwrap_or(Path::new("."));
    match (&auth.client_certificate, &auth.client_key) {
        (Some(c), Some(k)) => Ok(Some((dir.join(c), dir.join(k)))),
        _ => Ok(None),
    }
}

/// A client for `config` whose client certificate is read from `cert`/`key` on each new
/// connection. Unpooled, every request opens a connection, so none outlives a
/// rotation with the previous certificate (upstream closes such connections).
pub fn client(
    config: kube::Config,
    cert: PathBuf,
    key: PathBuf,
    pooled: bool,
) -> Result<kube::Client, String> {
    let resolver = FileCertResolver::new(cert, key);
    resolver.current()?;
    let mut tls = config
        .rustls_client_config()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    tls.client_auth_cert_resolver = Arc::new(resolver);
    // A resumed session keeps the certificate it began with; a rotated one must be
    // presented in a full handshake.
    tls.resumption = rustls::client::Resumption::disabled();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper_client: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(if pooled { usize::MAX } else { 0 })
            .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(|e| e.to_string())?)
        .layer(config.extra_headers_layer().map_err(|e| e.to_string())?)
        .map_err(|e: hyper_util::client::legacy::Error| -> BoxError { Box::new(e) })
        .service(hyper_client);
    Ok(kube::Client::new(service, config.default_namespace))
}
