//! Serving certificates: the given `--tls-cert-file`/`--tls-private-key-file`, or (as
//! upstream) a self-signed pair generated once and kept in `--cert-dir`.

use crate::authentication::x509_verify::{ClientCaVerifier, RequestClientCert};
pub use component_base::tls::{ensure_self_signed, load_pem};
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

/// The certificates of a CA bundle (`--client-ca-file`, `--requestheader-client-ca-file`).
pub fn load_roots(ca: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::File::open(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
    let mut certs = Vec::new();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(pem)) {
        certs.push(c.map_err(|e| format!("parsing {}: {e}", ca.display()))?);
    }
    if certs.is_empty() {
        return Err(format!("no certificate in {}", ca.display()));
    }
    Ok(certs)
}

/// A verifier of client certificates chaining to `roots` (X.509 v1 certificates
/// included, as upstream); clients without a certificate are let through (they may
/// authenticate otherwise).
pub fn client_verifier(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    Ok(Arc::new(ClientCaVerifier::new(roots)?))
}

/// The serving configuration; client certificates are requested and verified when
/// `client_roots` (every CA whose clients authenticate by certificate) is not empty.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, String> {
    let (certs, key) = load_pem(cert, key)?;
    let mut cfg = builder(client_roots)?
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The same with the serving certificate chosen per handshake (one that rotates).
pub fn server_config_resolving(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, String> {
    let mut cfg = builder(client_roots)?.with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn builder(
    client_roots: &[CertificateDer<'static>],
) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(if client_roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        // The handshake asks for a certificate and checks that the client holds its key;
        // the authenticators decide per request which CA vouches for it.
        builder.with_client_cert_verifier(Arc::new(RequestClientCert(ClientCaVerifier::new(
            client_roots,
        )?)))
    })
}
