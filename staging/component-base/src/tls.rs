//! Serving certificates (upstream `apiserver/pkg/server/options` serving certs): the
//! given `--tls-cert-file`/`--tls-private-key-file`, or a self-signed pair generated once
//! and kept in `--cert-dir`.

use crate::x509_verify::{ClientCaVerifier, RequestClientCert};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, ServerConfig, SignatureScheme};
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

/// Creates (or reuses) `<base>.crt`/`<base>.key` in `dir` for the given names/IPs.
pub fn ensure_self_signed(
    dir: &Path,
    base: &str,
    names: &[String],
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let (crt, key) = (
        dir.join(format!("{base}.crt")),
        dir.join(format!("{base}.key")),
    );
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

/// A verifier that accepts any server certificate: for peers whose certificates are
/// self-signed and carry no trust (kubelet serving certificates without
/// `--kubelet-certificate-authority`, HTTPS probes, which upstream never verifies).
#[derive(Debug)]
pub struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client certificate chain and its key.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A TLS client verifying servers against `roots` (None: not at all, see [`AcceptAny`]),
/// presenting `identity` when given. Errors name what was wrong (a bad root, a key that
/// does not match), for the caller to prefix with the flag or field it came from.
pub fn client(
    roots: Option<&[CertificateDer<'static>]>,
    identity: Option<Identity>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?;
    let builder = match roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for c in roots {
                store.add(c.clone()).map_err(|e| format!("CA: {e}"))?;
            }
            builder.with_root_certificates(store)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny)),
    };
    let cfg = match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// A TLS client that does not verify the server's certificate (see [`AcceptAny`]).
pub fn unverified_tls() -> tokio_rustls::TlsConnector {
    static CONNECTOR: std::sync::OnceLock<tokio_rustls::TlsConnector> = std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(cfg))
        })
        .clone()
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
