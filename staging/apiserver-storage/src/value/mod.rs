//! Encryption at rest (upstream `apiserver/pkg/storage/value` and its `encrypt/aes`,
//! `encrypt/secretbox`, `encrypt/identity`): values are written by the first provider of
//! a resource's list, prefixed `k8s:enc:<provider>:v1:<key name>:`, and read by whichever
//! provider and key their prefix names, so keys can be rotated.

pub mod encryptionconfig;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use crypto_secretbox::aead::{Aead, KeyInit};
use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};

/// One named key of a provider.
#[derive(Clone)]
pub struct Key {
    pub name: String,
    pub secret: Vec<u8>,
}

#[derive(Clone)]
pub enum Provider {
    Identity,
    AesCbc(Vec<Key>),
    AesGcm(Vec<Key>),
    Secretbox(Vec<Key>),
}

impl Provider {
    fn kind(&self) -> &'static str {
        match self {
            Provider::Identity => "identity",
            Provider::AesCbc(_) => "aescbc",
            Provider::AesGcm(_) => "aesgcm",
            Provider::Secretbox(_) => "secretbox",
        }
    }

    fn keys(&self) -> &[Key] {
        match self {
            Provider::Identity => &[],
            Provider::AesCbc(k) | Provider::AesGcm(k) | Provider::Secretbox(k) => k,
        }
    }
}

fn random(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| "no randomness available".to_string())?;
    Ok(buf)
}

fn gcm_key(secret: &[u8]) -> Result<aead::LessSafeKey, String> {
    let alg = match secret.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        n => return Err(format!("aesgcm key must be 16 or 32 bytes, got {n}")),
    };
    let key = aead::UnboundKey::new(alg, secret).map_err(|_| "invalid aesgcm key")?;
    Ok(aead::LessSafeKey::new(key))
}

fn cbc_encrypt(secret: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    Ok(match secret.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        n => return Err(format!("aescbc key must be 16, 24 or 32 bytes, got {n}")),
    })
}

fn cbc_decrypt(secret: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |_| "invalid padding on input".to_string();
    match secret.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(bad),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(bad),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(secret, iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(bad),
        n => Err(format!("aescbc key must be 16, 24 or 32 bytes, got {n}")),
    }
}

fn secretbox(secret: &[u8]) -> Result<crypto_secretbox::XSalsa20Poly1305, String> {
    crypto_secretbox::XSalsa20Poly1305::new_from_slice(secret)
        .map_err(|_| format!("secretbox key must be 32 bytes, got {}", secret.len()))
}

/// Seals `data` with one key; `context` (the storage key) is authenticated by aesgcm.
fn seal(kind: &Provider, key: &Key, context: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Provider::Identity => Ok(data.to_vec()),
        Provider::AesCbc(_) => {
            let iv = random(16)?;
            let mut out = iv.clone();
            out.extend(cbc_encrypt(&key.secret, &iv, data)?);
            Ok(out)
        }
        Provider::AesGcm(_) => {
            let nonce = random(12)?;
            let mut sealed = data.to_vec();
            gcm_key(&key.secret)?
                .seal_in_place_append_tag(
                    aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "bad nonce")?,
                    aead::Aad::from(context),
                    &mut sealed,
                )
                .map_err(|_| "aesgcm seal failed")?;
            let mut out = nonce;
            out.extend(sealed);
            Ok(out)
        }
        Provider::Secretbox(_) => {
            let nonce = random(24)?;
            let sealed = secretbox(&key.secret)?
                .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), data)
                .map_err(|_| "secretbox seal failed")?;
            let mut out = nonce;
            out.extend(sealed);
            Ok(out)
        }
    }
}

fn open(kind: &Provider, key: &Key, context: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Provider::Identity => Ok(data.to_vec()),
        Provider::AesCbc(_) => {
            if data.len() < 16 || !(data.len() - 16).is_multiple_of(16) {
                return Err("the stored data is not a multiple of the block size".into());
            }
            cbc_decrypt(&key.secret, &data[..16], &data[16..])
        }
        Provider::AesGcm(_) => {
            if data.len() < 12 {
                return Err("the stored data was shorter than the required size".into());
            }
            let mut sealed = data[12..].to_vec();
            let plain = gcm_key(&key.secret)?
                .open_in_place(
                    aead::Nonce::try_assume_unique_for_key(&data[..12]).map_err(|_| "bad nonce")?,
                    aead::Aad::from(context),
                    &mut sealed,
                )
                .map_err(|_| "cipher: message authentication failed")?;
            Ok(plain.to_vec())
        }
        Provider::Secretbox(_) => {
            if data.len() < 24 {
                return Err("the stored data was shorter than the required size".into());
            }
            secretbox(&key.secret)?
                .decrypt(
                    crypto_secretbox::Nonce::from_slice(&data[..24]),
                    &data[24..],
                )
                .map_err(|_| "output array too small or failed to authenticate".into())
        }
    }
}

/// The providers of one resource, in configuration order.
#[derive(Clone)]
pub struct Transformer {
    pub providers: Vec<Provider>,
}

const ENC_PREFIX: &[u8] = b"k8s:enc:";

impl Transformer {
    /// What to store for `data` at `key`: written by the first provider's first key.
    pub fn to_storage(&self, key: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let Some(first) = self.providers.first() else {
            return Ok(data.to_vec());
        };
        let Some(k) = first.keys().first() else {
            return Ok(data.to_vec());
        };
        let mut out = format!("k8s:enc:{}:v1:{}:", first.kind(), k.name).into_bytes();
        out.extend(seal(first, k, key.as_bytes(), data)?);
        Ok(out)
    }

    /// The plain value of what is stored at `key`.
    pub fn from_storage(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
        for p in &self.providers {
            for k in p.keys() {
                let prefix = format!("k8s:enc:{}:v1:{}:", p.kind(), k.name);
                if let Some(rest) = stored.strip_prefix(prefix.as_bytes()) {
                    return open(p, k, key.as_bytes(), rest);
                }
            }
        }
        if !stored.starts_with(ENC_PREFIX)
            && self
                .providers
                .iter()
                .any(|p| matches!(p, Provider::Identity))
        {
            return Ok(stored.to_vec());
        }
        Err("no matching prefix found".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Vec<Key> {
        vec![Key {
            name: "key1".into(),
            secret: (0..n as u8).collect(),
        }]
    }

    #[test]
    fn every_provider_round_trips_and_hides_the_value() {
        for p in [
            Provider::AesCbc(key(32)),
            Provider::AesGcm(key(32)),
            Provider::AesGcm(key(16)),
            Provider::Secretbox(key(32)),
        ] {
            let t = Transformer {
                providers: vec![p.clone(), Provider::Identity],
            };
            let stored = t
                .to_storage("/registry/secrets/ns/s", b"top secret")
                .unwrap();
            let expected = format!("k8s:enc:{}:v1:key1:", p.kind());
            assert!(stored.starts_with(expected.as_bytes()));
            assert!(!stored.windows(10).any(|w| w == b"top secret"));
            assert_eq!(
                t.from_storage("/registry/secrets/ns/s", &stored).unwrap(),
                b"top secret"
            );
            // Plain values written before encryption was configured stay readable.
            assert_eq!(t.from_storage("/k", b"{}").unwrap(), b"{}");
        }
        // aesgcm binds the value to its key.
        let t = Transformer {
            providers: vec![Provider::AesGcm(key(32))],
        };
        let stored = t.to_storage("/registry/secrets/a/x", b"v").unwrap();
        assert!(t.from_storage("/registry/secrets/b/x", &stored).is_err());
        assert!(t.from_storage("/k", b"plain").is_err());
    }
}
