//! `kubeadm init phase upload-certs` and the download in `kubeadm join --control-plane`
//! (upstream `phases/copycerts/copycerts.go` and `util/crypto`): the cluster's CAs, the
//! service-account key pair and the etcd CA, each encrypted with AES-256-GCM under the
//! certificate key (32 random bytes, hex; the nonce is prepended to the sealed data, as
//! upstream's `EncryptBytes`), in the `kube-system/kubeadm-certs` Secret. The Secret is
//! owned by a bootstrap token that expires in two hours, so the garbage collector
//! removes it then; joining nodes may read it through a Role of upstream's name.

use crate::app::apis::kubeadm::{DEFAULT_NODE_TOKEN_GROUP, InitConfig};
use crate::app::cmd::token;
use crate::app::util::apiclient::{create_or_update, from_json};
use crate::app::util::pkiutil;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::Api;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub const SECRET: &str = "kubeadm-certs";
const ROLE: &str = "kubeadm:kubeadm-certs";
/// How long the uploaded certificates live (upstream `DefaultCertTokenDuration`).
const TTL: Duration = Duration::from_secs(2 * 3600);

/// `kubeadm certs certificate-key`: 32 random bytes, hex-encoded.
pub fn create_certificate_key() -> Result<String, String> {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "no randomness for the certificate key")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn key(hex: &str) -> Result<LessSafeKey, String> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "the certificate key is not hex-encoded".to_string())?;
    if bytes.len() != 32 {
        return Err(format!(
            "the certificate key must be 32 bytes (64 hex characters), got {}",
            bytes.len()
        ));
    }
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "invalid certificate key")?,
    ))
}

pub fn encrypt(data: &[u8], key_hex: &str) -> Result<Vec<u8>, String> {
    let k = key(key_hex)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| "no randomness for the nonce")?;
    let mut sealed = data.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
    )
    .map_err(|_| "encryption failed")?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(out)
}

pub fn decrypt(data: &[u8], key_hex: &str) -> Result<Vec<u8>, String> {
    let k = key(key_hex)?;
    if data.len() < NONCE_LEN {
        return Err("the encrypted data is too short".into());
    }
    let (nonce, sealed) = data.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
    let mut buf = sealed.to_vec();
    let plain = k.open_in_place(nonce, Aad::empty(), &mut buf).map_err(
        |_| "error decoding secret data with provided key: cipher: message authentication failed",
    )?;
    Ok(plain.to_vec())
}

/// The files shared between control-plane nodes, relative to the certificates dir.
pub fn files(cfg: &InitConfig) -> Vec<&'static str> {
    let mut v = vec![
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.key",
        "sa.pub",
    ];
    if cfg.local_etcd() {
        v.extend(["etcd/ca.crt", "etcd/ca.key"]);
    }
    v
}

/// The Secret's key for a file (upstream `certOrKeyNameToSecretName`).
fn secret_key(file: &str) -> String {
    file.replace('/', "-")
}

/// The upload-certs phase: the configured certificate key (a new one when none is set)
/// seals the upload and is printed; it is returned for the join line.
pub async fn upload_certs(client: &kube::Client, cfg: &InitConfig) -> Result<String, String> {
    let key = match cfg.init.certificate_key.as_str() {
        "" => create_certificate_key()?,
        k => k.to_string(),
    };
    upload(client, cfg, &key).await?;
    println!("[upload-certs] Using certificate key:\n{key}");
    Ok(key)
}

pub async fn upload(client: &kube::Client, cfg: &InitConfig, key_hex: &str) -> Result<(), String> {
    println!(
        "[upload-certs] Storing the certificates in Secret {SECRET:?} in the \"kube-system\" Namespace"
    );
    let dir = Path::new(&cfg.cluster.certificates_dir);
    let mut data = BTreeMap::new();
    for f in files(cfg) {
        let bytes =
            std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))?;
        data.insert(secret_key(f), ByteString(encrypt(&bytes, key_hex)?));
    }
    // The owner: a token that only expires (no usages, no groups).
    let t = token::generate()?;
    token::create(
        client,
        &token::TokenSpec {
            token: t.clone(),
            description: "Proxy for managing TTL for the kubeadm-certs secret".into(),
            ttl: TTL,
            usages: Vec::new(),
            groups: Vec::new(),
        },
    )
    .await?;
    let (id, _) = token::parse(&t)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let owner = secrets
        .get(&format!("bootstrap-token-{id}"))
        .await
        .map_err(|e| format!("the certificates' owner token: {e}"))?;
    let mut secret: Secret = from_json(json!({
        "metadata": {"name": SECRET, "namespace": "kube-system",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Secret",
                "name": owner.metadata.name, "uid": owner.metadata.uid, "controller": true}]}}));
    secret.data = Some(data);
    create_or_update(&secrets, &secret).await?;
    create_or_update(
        &Api::<Role>::namespaced(client.clone(), "kube-system"),
        &from_json(json!({"metadata": {"name": ROLE, "namespace": "kube-system"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [SECRET]}]})),
    )
    .await?;
    create_or_update(
        &Api::<RoleBinding>::namespaced(client.clone(), "kube-system"),
        &from_json(json!({"metadata": {"name": ROLE, "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": DEFAULT_NODE_TOKEN_GROUP}]})),
    )
    .await
}

/// Writes the uploaded files into `dir` (keys private).
pub async fn download(
    client: &kube::Client,
    cfg: &InitConfig,
    dir: &Path,
    key_hex: &str,
) -> Result<(), String> {
    println!(
        "[download-certs] Downloading the certificates in Secret {SECRET:?} in the \"kube-system\" Namespace"
    );
    let secret = Api::<Secret>::namespaced(client.clone(), "kube-system")
        .get(SECRET)
        .await
        .map_err(|e| format!("error downloading the secret: {e}"))?;
    let data = secret.data.unwrap_or_default();
    for f in files(cfg) {
        let sealed = data
            .get(&secret_key(f))
            .ok_or_else(|| format!("the Secret {SECRET:?} has no {:?}", secret_key(f)))?;
        let plain = decrypt(&sealed.0, key_hex)?;
        let text = String::from_utf8(plain).map_err(|_| format!("{f}: not PEM"))?;
        let mode = if f.ends_with(".key") { 0o600 } else { 0o644 };
        pkiutil::write_file(&dir.join(f), &text, mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key() {
        let k = create_certificate_key().unwrap();
        assert_eq!(k.len(), 64);
        let sealed = encrypt(b"-----BEGIN CERTIFICATE-----", &k).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 27 + 16);
        assert_eq!(
            decrypt(&sealed, &k).unwrap(),
            b"-----BEGIN CERTIFICATE-----"
        );
        let other = create_certificate_key().unwrap();
        assert!(
            decrypt(&sealed, &other)
                .unwrap_err()
                .contains("authentication failed")
        );
        assert!(encrypt(b"x", "abcd").unwrap_err().contains("32 bytes"));
    }
}
