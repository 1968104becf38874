//! Serving certificates: the given `--tls-cert-file`/`--tls-private-key-file`, or (as
//! upstream) a self-signed pair generated once and kept in `--cert-dir`.

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

pub fn load_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(|e| format!("reading {}: {e}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("parsing {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(|e| format!("reading {}: {e}", key.display()))?,
    ))
    .map_err(|e| format!("parsing {}: {e}", key.display()))?
    .ok_or_else(|| format!("no private key in {}", key.display()))?;
    Ok((certs, key))
}

/// Creates (or reuses) `apiserver.crt`/`apiserver.key` in `dir` for the given names/IPs.
pub fn ensure_self_signed(
    dir: &Path,
    names: &[String],
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let (crt, key) = (dir.join("apiserver.crt"), dir.join("apiserver.key"));
    if crt.exists() && key.exists() {
        return Ok((crt, key));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("localhost@{}", jiff::Timestamp::now().as_second()),
    );
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let kp = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&kp).map_err(|e| e.to_string())?;
    std::fs::write(&crt, cert.pem()).map_err(|e| format!("writing {}: {e}", crt.display()))?;
    std::fs::write(&key, kp.serialize_pem())
        .map_err(|e| format!("writing {}: {e}", key.display()))?;
    Ok((crt, key))
}

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

/// A verifier of client certificates chaining to `roots`; clients without a certificate
/// are let through (they may authenticate otherwise).
pub fn client_verifier(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut store = rustls::RootCertStore::empty();
    for c in roots {
        store
            .add(c.clone())
            .map_err(|e| format!("client CA: {e}"))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(store),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("client CA: {e}"))
}

/// The serving configuration; client certificates are requested and verified when
/// `client_roots` (every CA whose clients authenticate by certificate) is not empty.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, String> {
    let (certs, key) = load_pem(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if client_roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(client_verifier(client_roots)?)
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
