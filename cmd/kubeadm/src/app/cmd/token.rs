//! `kubeadm token generate|create|list|delete` (upstream `cmd/kubeadm/app/cmd/token.go`
//! and `apis/bootstraptoken`): bootstrap tokens `[a-z0-9]{6}.[a-z0-9]{16}` stored as
//! `kube-system/bootstrap-token-<id>` Secrets of type `bootstrap.kubernetes.io/token`.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::BTreeMap;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// A random token.
pub fn generate() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let pick = |n: usize| -> Result<String, String> {
        let mut out = String::with_capacity(n);
        while out.len() < n {
            let mut b = [0u8; 1];
            ring::rand::SecureRandom::fill(&rng, &mut b).map_err(|_| "no randomness")?;
            // Rejection sampling keeps the choice uniform.
            if (b[0] as usize) < 252 {
                out.push(ALPHABET[b[0] as usize % 36] as char);
            }
        }
        Ok(out)
    };
    Ok(format!("{}.{}", pick(6)?, pick(16)?))
}

/// Splits and checks a token (upstream's `NewBootstrapTokenString`).
pub fn parse(token: &str) -> Result<(&str, &str), String> {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) if ok(id, 6) && ok(secret, 16) => Ok((id, secret)),
        _ => Err(format!(
            "the bootstrap token {token:?} was not of the form \"^([a-z0-9]{{6}})\\.([a-z0-9]{{16}})$\""
        )),
    }
}

pub struct TokenSpec {
    pub token: String,
    pub description: String,
    pub ttl: std::time::Duration,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

/// The Secret for a token (upstream's `BootstrapTokenToSecret`).
pub fn secret(spec: &TokenSpec) -> Result<Secret, String> {
    let (id, secret) = parse(&spec.token)?;
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    data.insert("token-id".into(), id.into());
    data.insert("token-secret".into(), secret.into());
    if !spec.description.is_empty() {
        data.insert("description".into(), spec.description.clone());
    }
    if !spec.ttl.is_zero() {
        let at =
            jiff::Timestamp::now() + jiff::SignedDuration::from_secs(spec.ttl.as_secs() as i64);
        data.insert(
            "expiration".into(),
            at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    for u in &spec.usages {
        if !matches!(u.as_str(), "signing" | "authentication") {
            return Err(format!(
                "invalid bootstrap token usage string: {u}, valid usage options: authentication, signing"
            ));
        }
        data.insert(format!("usage-bootstrap-{u}"), "true".into());
    }
    if !spec.groups.is_empty() {
        for g in &spec.groups {
            if !g.starts_with("system:bootstrappers:") {
                return Err(format!(
                    "group {g:?} is invalid: bootstrap group must match pattern \"\\Asystem:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]\\z\""
                ));
            }
        }
        data.insert("auth-extra-groups".into(), spec.groups.join(","));
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": SECRET_TYPE,
        "stringData": data,
    }))
    .map_err(|e| e.to_string())
}

pub async fn create(client: &kube::Client, spec: &TokenSpec) -> Result<(), String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let s = secret(spec)?;
    let name = s.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &s).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => api
            .replace(&name, &PostParams::default(), &s)
            .await
            .map(|_| ())
            .map_err(|e| format!("failed to update bootstrap token with name {name:?}: {e}")),
        Err(e) => Err(format!(
            "failed to create bootstrap token with name {name:?}: {e}"
        )),
    }
}

fn field(s: &Secret, key: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

/// `kubeadm token list`'s table.
pub async fn list(client: &kube::Client) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let secrets = api
        .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
        .await
        .map_err(|e| format!("failed to list bootstrap tokens: {e}"))?;
    let now = jiff::Timestamp::now();
    let mut rows = vec![vec![
        "TOKEN".to_string(),
        "TTL".into(),
        "EXPIRES".into(),
        "USAGES".into(),
        "DESCRIPTION".into(),
        "EXTRA GROUPS".into(),
    ]];
    for s in secrets.items {
        let (id, secret) = (field(&s, "token-id"), field(&s, "token-secret"));
        if parse(&format!("{id}.{secret}")).is_err() {
            continue;
        }
        let expiration = field(&s, "expiration");
        let (ttl, expires) = match expiration.parse::<jiff::Timestamp>() {
            Ok(t) => {
                // Sub-second precision, as Go's time.Until: a day's token shows 23h.
                let left = t.duration_since(now).as_secs();
                (super::certs::short_human_duration(left), expiration.clone())
            }
            Err(_) => ("<forever>".to_string(), "<never>".to_string()),
        };
        let mut usages: Vec<&str> = ["authentication", "signing"]
            .into_iter()
            .filter(|u| field(&s, &format!("usage-bootstrap-{u}")) == "true")
            .collect();
        usages.sort();
        let desc = field(&s, "description");
        let groups = field(&s, "auth-extra-groups");
        rows.push(vec![
            format!("{id}.{secret}"),
            ttl,
            expires,
            usages.join(","),
            if desc.is_empty() {
                "<none>".into()
            } else {
                desc
            },
            if groups.is_empty() {
                "<none>".into()
            } else {
                groups
            },
        ]);
    }
    Ok(super::certs::table(&rows))
}

pub async fn delete(client: &kube::Client, token_or_id: &str) -> Result<String, String> {
    let id = match token_or_id.split_once('.') {
        Some(_) => parse(token_or_id)?.0.to_string(),
        None if token_or_id.len() == 6 => token_or_id.to_string(),
        None => {
            return Err(
                "given token didn't match pattern \"^([a-z0-9]{6})$\" or \"^([a-z0-9]{6})\\.([a-z0-9]{16})$\""
                    .to_string(),
            );
        }
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    api.delete(&format!("bootstrap-token-{id}"), &DeleteParams::default())
        .await
        .map_err(|e| format!("failed to delete bootstrap token {id:?}: {e}"))?;
    Ok(format!("bootstrap token {id:?} deleted"))
}

/// `sha256:<hex>` of a CA certificate's SubjectPublicKeyInfo (the discovery pin).
pub fn ca_cert_hash(ca_pem: &str) -> Result<String, String> {
    let (_, p) =
        x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(|e| format!("CA: {e}"))?;
    let cert = p.parse_x509().map_err(|e| format!("CA: {e}"))?;
    let d = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// The join command for `token create --print-join-command`.
pub fn join_command(server: &str, token: &str, ca_pem: &str) -> Result<String, String> {
    let endpoint = server.trim_start_matches("https://").trim_end_matches('/');
    Ok(format!(
        "kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {}",
        ca_cert_hash(ca_pem)?
    ))
}

/// The server and CA (PEM) of a kubeconfig with embedded CA data.
pub fn kubeconfig_server_and_ca(path: &std::path::Path) -> Result<(String, String), String> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| format!("{}: no cluster", path.display()))?;
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(d), _) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?,
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?,
        (None, None) => return Err(format!("{}: no certificate authority", path.display())),
    };
    Ok((cluster.server.unwrap_or_default(), ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_upstreams_shape() {
        for _ in 0..50 {
            let t = generate().unwrap();
            parse(&t).unwrap();
        }
        assert!(parse("ABCDEF.0123456789abcdef").is_err());
        assert!(parse("abcdef.0123").is_err());
        let s = secret(&TokenSpec {
            token: "abcdef.0123456789abcdef".into(),
            description: "The default bootstrap token generated by 'kubeadm init'.".into(),
            ttl: std::time::Duration::from_secs(3600),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec!["system:bootstrappers:kubeadm:default-node-token".into()],
        })
        .unwrap();
        let data = s.string_data.unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(data["usage-bootstrap-signing"], "true");
        assert_eq!(
            data["auth-extra-groups"],
            "system:bootstrappers:kubeadm:default-node-token"
        );
        assert!(data["expiration"].ends_with('Z'));
        assert!(
            secret(&TokenSpec {
                token: "abcdef.0123456789abcdef".into(),
                description: String::new(),
                ttl: std::time::Duration::ZERO,
                usages: vec!["everything".into()],
                groups: vec![],
            })
            .is_err()
        );
    }
}
