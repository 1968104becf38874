//! Verification of client certificate chains as upstream's x509 authenticator does it
//! (Go's `x509.Certificate.Verify` with the client CA pool and `ExtKeyUsageClientAuth`).
//! Unlike webpki it accepts X.509 v1 certificates, which `openssl x509 -req` makes
//! without an extensions file and which Go accepts as client certificates.
//!
//! The TLS handshake only proves that the client holds the key of the certificate it
//! sent (`RequestClientCert`, as upstream); which CA vouches for it is decided per request
//! by the authenticators, so a certificate from an unknown CA does not stop a bearer token
//! from authenticating.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

/// Longest chain followed from the leaf to a root.
const MAX_DEPTH: usize = 8;

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, String> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, c)| c)
        .map_err(|e| format!("malformed certificate: {e}"))
}

fn valid_at(c: &X509Certificate<'_>, now: ASN1Time) -> Result<(), String> {
    if c.validity().is_valid_at(now) {
        Ok(())
    } else {
        Err(format!(
            "certificate {} has expired or is not yet valid",
            c.subject()
        ))
    }
}

fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(b)) if b.value.ca)
}

/// A leaf without an extended key usage may be used for anything (as Go treats it).
fn allows_client_auth(c: &X509Certificate<'_>) -> bool {
    match c.extended_key_usage() {
        Ok(Some(eku)) => eku.value.any || eku.value.client_auth,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Whether `child` is signed by `parent`.
fn issued_by(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == parent.subject().as_raw()
        && child.verify_signature(Some(parent.public_key())).is_ok()
}

/// The CA bundle clients' certificates must chain to.
#[derive(Debug)]
pub struct ClientCaVerifier {
    roots: Vec<CertificateDer<'static>>,
    subjects: Vec<DistinguishedName>,
}

impl ClientCaVerifier {
    pub fn new(roots: &[CertificateDer<'static>]) -> Result<Self, String> {
        let mut subjects = Vec::new();
        for r in roots {
            let c = parse(r).map_err(|e| format!("client CA: {e}"))?;
            subjects.push(DistinguishedName::from(c.subject().as_raw().to_vec()));
        }
        Ok(Self {
            roots: roots.to_vec(),
            subjects,
        })
    }

    /// Verifies that `leaf` (with the `intermediates` the client sent) chains to one of
    /// the roots at `now` and may authenticate a client.
    pub fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        let now = ASN1Time::from_timestamp(now.as_secs() as i64).map_err(|e| e.to_string())?;
        let roots = self
            .roots
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let intermediates = intermediates
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_der = leaf.as_ref();
        let leaf = parse(leaf)?;
        valid_at(&leaf, now)?;
        if !allows_client_auth(&leaf) {
            return Err("certificate specifies an incompatible key usage".into());
        }
        // A root presented as the client certificate is trusted as itself (as Go does).
        if self.roots.iter().any(|r| r.as_ref() == leaf_der) {
            return Ok(());
        }
        let mut current = &leaf;
        for _ in 0..MAX_DEPTH {
            if let Some(root) = roots.iter().find(|r| issued_by(current, r)) {
                return valid_at(root, now);
            }
            // Intermediates must be CAs: a v1 certificate can be a root, never a link.
            match intermediates
                .iter()
                .find(|i| is_ca(i) && valid_at(i, now).is_ok() && issued_by(current, i))
            {
                Some(next) => current = next,
                None => break,
            }
        }
        Err("certificate signed by unknown authority".into())
    }
}

/// Verifies a handshake signature with the public key of `cert`, whatever its version.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let tls12_only = matches!(
        dss.scheme,
        SignatureScheme::RSA_PKCS1_SHA1
            | SignatureScheme::ECDSA_SHA1_Legacy
            | SignatureScheme::RSA_PKCS1_SHA256
            | SignatureScheme::RSA_PKCS1_SHA384
            | SignatureScheme::RSA_PKCS1_SHA512
    );
    if tls13 && tls12_only {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let c = parse(cert)
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let key = c.public_key().subject_public_key.data.as_ref();
    let algs = algorithms();
    let candidates = algs
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    // TLS 1.3 names one algorithm per scheme; TLS 1.2's ECDSA schemes leave the curve
    // open, so each candidate is tried.
    let n = if tls13 { 1 } else { candidates.len() };
    if candidates
        .iter()
        .take(n)
        .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
    {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(Error::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        ))
    }
}

impl ClientCertVerifier for ClientCaVerifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify(end_entity, intermediates, now)
            .map(|_| ClientCertVerified::assertion())
            .map_err(Error::General)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The handshake side (upstream's `tls.RequestClientCert`): any well-formed certificate
/// whose key signed the handshake is accepted; the authenticators verify its chain.
#[derive(Debug)]
pub struct RequestClientCert(pub ClientCaVerifier);

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        parse(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
