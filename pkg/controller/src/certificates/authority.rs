//! The signing CA (upstream `pkg/controller/certificates/authority`): signs a CSR's
//! public key and subject with the cluster CA from `--cluster-signing-cert-file` /
//! `--cluster-signing-key-file`, for the requested usages and lifetime, backdated five
//! minutes for clock skew and never outliving the CA.

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::time::Duration;

/// Upstream's backdate for clock skew between the signer and the cert's users.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate's NotAfter (seconds since the epoch).
    not_after: i64,
}

/// What a CSR asks for, read once for validation and signing.
pub struct Request {
    params: CertificateSigningRequestParams,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
}

fn text(v: &DnValue) -> String {
    match v {
        DnValue::Utf8String(s) => s.clone(),
        DnValue::PrintableString(p) => p.as_str().into(),
        DnValue::Ia5String(i) => i.as_str().into(),
        DnValue::TeletexString(t) => t.as_str().into(),
        DnValue::BmpString(b) => String::from_utf8_lossy(b.as_bytes()).into_owned(),
        DnValue::UniversalString(u) => String::from_utf8_lossy(u.as_bytes()).into_owned(),
        _ => String::new(),
    }
}

/// Parses a PEM `CERTIFICATE REQUEST` and checks its signature.
pub fn parse_request(pem: &str) -> Result<Request, String> {
    let params = CertificateSigningRequestParams::from_pem(pem)
        .map_err(|e| format!("unable to parse csr: {e}"))?;
    let dn = &params.params.distinguished_name;
    let mut r = Request {
        common_name: dn.get(&DnType::CommonName).map(text).unwrap_or_default(),
        organizations: dn
            .iter()
            .filter(|(t, _)| **t == DnType::OrganizationName)
            .map(|(_, v)| text(v))
            .collect(),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        emails: Vec::new(),
        uris: Vec::new(),
        params: params.clone(),
    };
    for san in &params.params.subject_alt_names {
        match san {
            SanType::DnsName(n) => r.dns_names.push(n.as_str().to_string()),
            SanType::IpAddress(ip) => r.ip_addresses.push(ip.to_string()),
            SanType::Rfc822Name(e) => r.emails.push(e.as_str().to_string()),
            SanType::URI(u) => r.uris.push(u.as_str().to_string()),
            _ => {}
        }
    }
    Ok(r)
}

/// A PKCS#1 `RSA PRIVATE KEY` (what kubeadm and openssl's traditional format write)
/// wrapped as the PKCS#8 `PrivateKeyInfo` ring reads.
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    fn der_len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            vec![n as u8]
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            let mut out = vec![0x80 | bytes.len() as u8];
            out.extend(bytes);
            out
        }
    }
    // version 0, AlgorithmIdentifier { rsaEncryption, NULL }
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend([
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ]);
    body.push(0x04);
    body.extend(der_len(pkcs1.len()));
    body.extend(pkcs1);
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

fn load_key(pem: &str) -> Result<KeyPair, String> {
    let item = rustls_pemfile::read_one(&mut pem.as_bytes())
        .map_err(|e| format!("parsing the signing key: {e}"))?;
    let der = match item {
        Some(rustls_pemfile::Item::Pkcs8Key(k)) => k.secret_pkcs8_der().to_vec(),
        Some(rustls_pemfile::Item::Pkcs1Key(k)) => pkcs1_to_pkcs8(k.secret_pkcs1_der()),
        _ => {
            return Err(
                "unsupported signing key: want a PKCS#8 \"PRIVATE KEY\" or an \"RSA PRIVATE KEY\""
                    .into(),
            );
        }
    };
    KeyPair::try_from(der.as_slice()).map_err(|e| format!("loading the signing key: {e}"))
}

fn key_usage(u: &str) -> Option<KeyUsagePurpose> {
    Some(match u {
        "signing" | "digital signature" => KeyUsagePurpose::DigitalSignature,
        "content commitment" => KeyUsagePurpose::ContentCommitment,
        "key encipherment" => KeyUsagePurpose::KeyEncipherment,
        "key agreement" => KeyUsagePurpose::KeyAgreement,
        "data encipherment" => KeyUsagePurpose::DataEncipherment,
        "cert sign" => KeyUsagePurpose::KeyCertSign,
        "crl sign" => KeyUsagePurpose::CrlSign,
        "encipher only" => KeyUsagePurpose::EncipherOnly,
        "decipher only" => KeyUsagePurpose::DecipherOnly,
        _ => return None,
    })
}

fn extended_usage(u: &str) -> Option<ExtendedKeyUsagePurpose> {
    Some(match u {
        "any" => ExtendedKeyUsagePurpose::Any,
        "server auth" => ExtendedKeyUsagePurpose::ServerAuth,
        "client auth" => ExtendedKeyUsagePurpose::ClientAuth,
        "code signing" => ExtendedKeyUsagePurpose::CodeSigning,
        "email protection" | "s/mime" => ExtendedKeyUsagePurpose::EmailProtection,
        "timestamping" => ExtendedKeyUsagePurpose::TimeStamping,
        "ocsp signing" => ExtendedKeyUsagePurpose::OcspSigning,
        _ => return None,
    })
}

impl Authority {
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Authority, String> {
        let key = load_key(key_pem)?;
        let (_, block) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| format!("parsing the signing certificate: {e}"))?;
        let cert = block
            .parse_x509()
            .map_err(|e| format!("parsing the signing certificate: {e}"))?;
        let not_after = cert.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("loading the signing certificate: {e}"))?;
        Ok(Authority { issuer, not_after })
    }

    /// Signs `req` for `usages`, valid for `ttl`; returns the certificate PEM.
    pub fn sign(&self, req: &Request, usages: &[String], ttl: Duration) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc();
        let mut not_after = now + ttl;
        let ca_end =
            time::OffsetDateTime::from_unix_timestamp(self.not_after).map_err(|e| e.to_string())?;
        if not_after > ca_end {
            not_after = ca_end;
        }
        let serial: [u8; 16] = {
            let mut b = [0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                .map_err(|_| "no randomness for the serial number".to_string())?;
            b[0] &= 0x7f;
            b
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = req.params.params.distinguished_name.clone();
        params.subject_alt_names = req.params.params.subject_alt_names.clone();
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = usages.iter().filter_map(|u| key_usage(u)).collect();
        params.extended_key_usages = usages.iter().filter_map(|u| extended_usage(u)).collect();
        params.use_authority_key_identifier_extension = true;
        params.key_usages.dedup();
        let csr = CertificateSigningRequestParams {
            params,
            public_key: req.params.public_key.clone(),
        };
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| format!("signing: {e}"))?;
        Ok(cert.pem())
    }
}
