//! Keys and certificates for the cluster's PKI (upstream `cmd/kubeadm/app/util/pkiutil`):
//! keys of the configured `encryptionAlgorithm`, self-signed CAs and leaf certificates
//! they sign, written as `<name>.crt`/`<name>.key` (keys readable by root only).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh private key: RSA keys are generated here (ring cannot generate them) and
/// signed with by ring through rcgen; ECDSA keys come from rcgen.
pub fn generate_key(algorithm: &str) -> Result<KeyPair, String> {
    let rsa_bits = match algorithm {
        "RSA-2048" => 2048,
        "RSA-3072" => 3072,
        "RSA-4096" => 4096,
        "ECDSA-P256" => {
            return KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| e.to_string());
        }
        "ECDSA-P384" => {
            return KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .map_err(|e| e.to_string());
        }
        other => return Err(format!("unsupported encryption algorithm {other:?}")),
    };
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, rsa_bits)
        .map_err(|e| format!("generating an RSA key: {e}"))?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| format!("encoding the RSA key: {e}"))?;
    KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("loading the RSA key: {e}"))
}

/// What a certificate is for (upstream's `CertConfig`).
#[derive(Clone, Debug, Default)]
pub struct CertSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server: bool,
    pub client: bool,
}

fn timestamp(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn params(spec: &CertSpec, validity: Duration) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in &spec.organizations {
        dn.push(DnType::OrganizationName, o.clone());
    }
    dn.push(DnType::CommonName, spec.common_name.clone());
    p.distinguished_name = dn;
    // Backdated a little, for clocks slightly behind (upstream allows the same skew).
    let now = jiff::Timestamp::now().as_second();
    p.not_before = timestamp(now - 5 * 60);
    p.not_after = timestamp(now + validity.as_secs() as i64);
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| "no randomness for a serial number")?;
    serial[0] &= 0x7f;
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    for d in &spec.dns_names {
        p.subject_alt_names.push(SanType::DnsName(
            d.clone()
                .try_into()
                .map_err(|e| format!("DNS name {d:?}: {e}"))?,
        ));
    }
    for ip in &spec.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(p)
}

/// A self-signed CA certificate (PEM) for `key`.
pub fn new_ca(common_name: &str, validity: Duration, key: &KeyPair) -> Result<String, String> {
    let spec = CertSpec {
        common_name: common_name.into(),
        // Upstream's CAs carry their name as a DNS SAN too.
        dns_names: vec![common_name.into()],
        ..Default::default()
    };
    let mut p = params(&spec, validity)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.self_signed(key)
        .map(|c| c.pem())
        .map_err(|e| format!("signing the CA {common_name:?}: {e}"))
}

/// A leaf certificate for `key`, signed by the CA `ca_pem`/`ca_key`.
pub fn new_signed(
    spec: &CertSpec,
    validity: Duration,
    key: &KeyPair,
    ca_pem: &str,
    ca_key: &KeyPair,
) -> Result<String, String> {
    let mut p = params(spec, validity)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if spec.server {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if spec.client {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    p.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)
        .map_err(|e| format!("reading the CA certificate: {e}"))?;
    p.signed_by(key, &issuer)
        .map(|c| c.pem())
        .map_err(|e| format!("signing {:?}: {e}", spec.common_name))
}

pub fn cert_path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.crt"))
}

pub fn key_path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.key"))
}

/// Writes `<base>.crt` (0644) and `<base>.key` (0600) under `dir`.
pub fn write_pair(dir: &Path, base: &str, cert_pem: &str, key: &KeyPair) -> Result<(), String> {
    write_file(&cert_path(dir, base), cert_pem, 0o644)?;
    write_file(&key_path(dir, base), &key.serialize_pem(), 0o600)
}

pub fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Reads `<base>.crt`/`<base>.key` under `dir`.
pub fn read_pair(dir: &Path, base: &str) -> Result<(String, KeyPair), String> {
    let crt = cert_path(dir, base);
    let cert = std::fs::read_to_string(&crt).map_err(|e| format!("{}: {e}", crt.display()))?;
    let kp = key_path(dir, base);
    let key_pem = std::fs::read_to_string(&kp).map_err(|e| format!("{}: {e}", kp.display()))?;
    Ok((cert, load_key(&key_pem)?))
}

/// A PEM private key (PKCS#8, or PKCS#1 RSA as older kubeadm wrote them).
pub fn load_key(pem: &str) -> Result<KeyPair, String> {
    if let Ok(k) = KeyPair::from_pem(pem) {
        return Ok(k);
    }
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| format!("private key: {e}"))?;
    let pkcs8 = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| e.to_string())?;
    KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| e.to_string())
}

/// A certificate's validity (Unix seconds) and whether it is a CA.
pub struct CertInfo {
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
}

pub fn info(pem: &str) -> Result<CertInfo, String> {
    let (_, p) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("PEM: {e}"))?;
    let cert = p.parse_x509().map_err(|e| format!("certificate: {e}"))?;
    Ok(CertInfo {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
    })
}

/// What an existing certificate was issued for (upstream's `certToConfig`): its subject,
/// SANs and extended key usages, for renewing it as it is.
pub fn spec_of(pem: &str) -> Result<CertSpec, String> {
    use x509_parser::extensions::GeneralName;
    let (_, p) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("PEM: {e}"))?;
    let cert = p.parse_x509().map_err(|e| format!("certificate: {e}"))?;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue| {
        a.as_str().map(String::from).unwrap_or_default()
    };
    let mut spec = CertSpec {
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .map(text)
            .unwrap_or_default(),
        organizations: cert.subject().iter_organization().map(text).collect(),
        ..Default::default()
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => spec.dns_names.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => spec
                        .ips
                        .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                    16 => spec
                        .ips
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        spec.server = eku.value.server_auth;
        spec.client = eku.value.client_auth;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_signs_a_leaf_that_verifies() {
        let ca_key = generate_key("ECDSA-P256").unwrap();
        let ca = new_ca("kubernetes", Duration::from_secs(3600), &ca_key).unwrap();
        let key = generate_key("RSA-2048").unwrap();
        let spec = CertSpec {
            common_name: "kube-apiserver".into(),
            dns_names: vec!["kubernetes.default".into()],
            ips: vec!["10.96.0.1".parse().unwrap()],
            server: true,
            ..Default::default()
        };
        let leaf = new_signed(&spec, Duration::from_secs(600), &key, &ca, &ca_key).unwrap();
        let i = info(&leaf).unwrap();
        assert!(!i.is_ca);
        assert!(info(&ca).unwrap().is_ca);
        assert!((i.not_after - i.not_before - 600 - 300).abs() <= 1);
        // The leaf verifies against the CA (as webpki checks a server chain).
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca.as_bytes()).unwrap();
        let (_, leaf_der) = x509_parser::pem::parse_x509_pem(leaf.as_bytes()).unwrap();
        let ca_cert = ca_der.parse_x509().unwrap();
        let leaf_cert = leaf_der.parse_x509().unwrap();
        leaf_cert
            .verify_signature(Some(ca_cert.public_key()))
            .unwrap();
        // Renewal reads back what the certificate was issued for.
        let back = spec_of(&leaf).unwrap();
        assert_eq!(back.common_name, "kube-apiserver");
        assert_eq!(back.dns_names, ["kubernetes.default"]);
        assert_eq!(back.ips, ["10.96.0.1".parse::<IpAddr>().unwrap()]);
        assert!(back.server && !back.client);
        // Keys written and read back keep their kind.
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "apiserver", &leaf, &key).unwrap();
        let (c, k) = read_pair(dir.path(), "apiserver").unwrap();
        assert_eq!(c, leaf);
        assert_eq!(k.serialize_pem(), key.serialize_pem());
    }
}
