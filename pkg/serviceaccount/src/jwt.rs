//! Signed JSON Web Tokens for service accounts (upstream `pkg/serviceaccount/jwt.go`):
//! RS256 or ES256 keys read from PEM files, compact JWS signing and verification, key IDs
//! (SHA-256 of the PKIX public key) and the JWKS document.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use rustls_pemfile::Item;
use serde_json::{Value, json};

/// A public key tokens are checked against.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub kid: String,
    pub alg: &'static str,
    /// RSA: the PKCS#1 RSAPublicKey; EC: the uncompressed point.
    raw: Vec<u8>,
    jwk: Value,
}

pub enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

// ---- minimal DER for PKIX public keys ----

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

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend(content);
    out
}

const RSA_ALGORITHM: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
const EC_P256_ALGORITHM: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07,
];

fn pkix(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend(key);
    let mut body = der(0x30, algorithm);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

fn kid(pkix_der: &[u8]) -> String {
    B64.encode(ring::digest::digest(&ring::digest::SHA256, pkix_der))
}

/// Strips leading zero bytes of a big-endian integer (JWK `n`/`e` are unsigned).
fn unsigned(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|x| *x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[start..]
}

/// Reads the RSAPublicKey's modulus and exponent (a SEQUENCE of two INTEGERs).
fn rsa_components(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn read(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        if *b.first()? != tag {
            return None;
        }
        let (len, hdr) = match *b.get(1)? {
            l if l < 0x80 => (l as usize, 2),
            l => {
                let n = (l & 0x7f) as usize;
                let mut len = 0usize;
                for i in 0..n {
                    len = len.checked_mul(256)? + *b.get(2 + i)? as usize;
                }
                (len, 2 + n)
            }
        };
        let content = b.get(hdr..hdr.checked_add(len)?)?;
        Some((content, &b[hdr + len..]))
    }
    let (seq, _) = read(pkcs1, 0x30)?;
    let (n, rest) = read(seq, 0x02)?;
    let (e, _) = read(rest, 0x02)?;
    Some((unsigned(n).to_vec(), unsigned(e).to_vec()))
}

impl PublicKey {
    fn rsa(pkcs1: Vec<u8>) -> Option<PublicKey> {
        let (n, e) = rsa_components(&pkcs1)?;
        let kid = kid(&pkix(RSA_ALGORITHM, &pkcs1));
        let jwk = json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": B64.encode(n), "e": B64.encode(e)});
        Some(PublicKey {
            kid,
            alg: "RS256",
            raw: pkcs1,
            jwk,
        })
    }

    fn ec(point: Vec<u8>) -> Option<PublicKey> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let kid = kid(&pkix(EC_P256_ALGORITHM, &point));
        let jwk = json!({"use": "sig", "kty": "EC", "kid": kid, "alg": "ES256", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
        Some(PublicKey {
            kid,
            alg: "ES256",
            raw: point,
            jwk,
        })
    }

    fn from_spki(spki: &[u8]) -> Option<PublicKey> {
        use x509_parser::prelude::FromDer;
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).ok()?;
        let data = info.subject_public_key.data.to_vec();
        match info.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => PublicKey::rsa(data),
            "1.2.840.10045.2.1" => PublicKey::ec(data),
            _ => None,
        }
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(msg, sig)
            .is_ok()
    }
}

fn pem_items(path: &std::path::Path) -> Result<Vec<Item>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::read_all(&mut std::io::BufReader::new(bytes.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))
}

impl Signer {
    /// Reads a private key (PKCS#1 RSA, or PKCS#8 RSA / P-256) from a PEM file.
    pub fn load(path: &std::path::Path) -> Result<Signer, String> {
        for item in pem_items(path)? {
            match item {
                Item::Pkcs1Key(k) => {
                    return RsaKeyPair::from_der(k.secret_pkcs1_der())
                        .map(Signer::Rsa)
                        .map_err(|e| format!("{}: invalid RSA key: {e}", path.display()));
                }
                Item::Pkcs8Key(k) => {
                    let der = k.secret_pkcs8_der();
                    if let Ok(rsa) = RsaKeyPair::from_pkcs8(der) {
                        return Ok(Signer::Rsa(rsa));
                    }
                    return EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        der,
                        &SystemRandom::new(),
                    )
                    .map(Signer::Ec)
                    .map_err(|e| format!("{}: unsupported private key: {e}", path.display()));
                }
                Item::Sec1Key(_) => {
                    return Err(format!(
                        "{}: EC keys must be in PKCS#8 form (\"PRIVATE KEY\")",
                        path.display()
                    ));
                }
                _ => {}
            }
        }
        Err(format!("{}: no private key found", path.display()))
    }

    /// Writes a new P-256 key to `path` (mode 0600) and loads it.
    pub fn generate(path: &std::path::Path) -> Result<Signer, String> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Signer::load(path)
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            Signer::Rsa(k) => PublicKey::rsa(k.public_key().as_ref().to_vec()),
            Signer::Ec(k) => PublicKey::ec(k.public_key().as_ref().to_vec()),
        }
        .expect("a loaded key has a valid public half")
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let public = self.public_key();
        let header = json!({"alg": public.alg, "kid": public.kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|e| e.to_string())?;
                sig
            }
            Signer::Ec(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|e| e.to_string())?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", B64.encode(sig)))
    }
}

/// Public keys from PEM files: public keys, certificates, or private keys.
pub fn load_public_keys(path: &std::path::Path) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for item in pem_items(path)? {
        let key = match item {
            Item::SubjectPublicKeyInfo(spki) => PublicKey::from_spki(spki.as_ref()),
            Item::X509Certificate(cert) => {
                use x509_parser::prelude::FromDer;
                x509_parser::certificate::X509Certificate::from_der(cert.as_ref())
                    .ok()
                    .and_then(|(_, c)| PublicKey::from_spki(c.public_key().raw))
            }
            Item::Pkcs1Key(_) | Item::Pkcs8Key(_) => Some(Signer::load(path)?.public_key()),
            _ => None,
        };
        keys.extend(key);
    }
    if keys.is_empty() {
        return Err(format!("{}: no usable public keys", path.display()));
    }
    Ok(keys)
}

/// Why a token was not accepted (logged; clients only ever see 401).
pub type Rejection = String;

/// Checks a compact JWS against the keys and returns its header and claims.
pub fn verify(token: &str, keys: &[PublicKey]) -> Result<(Value, Value), Rejection> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("not a compact JWS".into());
    };
    let decode = |p: &str| B64.decode(p).map_err(|e| format!("invalid base64: {e}"));
    let header: Value =
        serde_json::from_slice(&decode(h)?).map_err(|e| format!("invalid header: {e}"))?;
    let claims: Value =
        serde_json::from_slice(&decode(c)?).map_err(|e| format!("invalid claims: {e}"))?;
    let sig = decode(s)?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let msg = format!("{h}.{c}");
    let ok = keys
        .iter()
        .filter(|k| k.alg == alg)
        .any(|k| k.verify(msg.as_bytes(), &sig));
    if !ok {
        return Err("invalid signature".into());
    }
    Ok((header, claims))
}

/// Whether `token` has the shape of a JWT (so other authenticators can skip it).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_with_a_generated_key() {
        let dir = tempfile_dir();
        let signer = Signer::generate(&dir.join("sa.key")).unwrap();
        let token = signer.sign(&json!({"sub": "x"})).unwrap();
        let keys = load_public_keys(&dir.join("sa.key")).unwrap();
        let (h, c) = verify(&token, &keys).unwrap();
        assert_eq!(h["alg"], "ES256");
        assert_eq!(h["kid"], keys[0].kid);
        assert_eq!(c["sub"], "x");
        // Any change to the payload breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = B64.encode(json!({"sub": "admin"}).to_string());
        assert!(verify(&parts.join("."), &keys).is_err());
        assert!(verify("a.b", &keys).is_err());
        assert!(verify("!!.!!.!!", &keys).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("jwt-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
