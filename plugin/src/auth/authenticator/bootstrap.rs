//! Bootstrap tokens (upstream `plugin/pkg/auth/authenticator/token/bootstrap`): a token
//! `<id>.<secret>` authenticates as `system:bootstrap:<id>` while the `kube-system` Secret
//! `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` holds the same secret,
//! allows authentication and has not expired. `kubeadm join` uses them.

use apiserver::authentication::{TokenAuthenticator, UserInfo};
use apiserver::registry::generic::Registry;
use base64::Engine;
use serde_json::Value;
use std::sync::Arc;

pub struct BootstrapTokens {
    pub secrets: Arc<Registry>,
}

fn valid_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A field of the Secret's data, decoded.
fn data(secret: &Value, key: &str) -> Option<String> {
    let raw = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// Constant-time comparison, so the secret cannot be guessed byte by byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[async_trait::async_trait]
impl TokenAuthenticator for BootstrapTokens {
    async fn authenticate(&self, token: &str, _audiences: &[String]) -> Option<UserInfo> {
        let (id, secret) = token.split_once('.')?;
        if !valid_part(id, 6) || !valid_part(secret, 16) {
            return None;
        }
        let name = format!("bootstrap-token-{id}");
        let obj = self.secrets.get(Some("kube-system"), &name).await.ok()?;
        if obj["type"] != "bootstrap.kubernetes.io/token"
            || obj["metadata"]["deletionTimestamp"].is_string()
        {
            return None;
        }
        if data(&obj, "token-id").as_deref() != Some(id)
            || !same(&data(&obj, "token-secret").unwrap_or_default(), secret)
            || data(&obj, "usage-bootstrap-authentication").as_deref() != Some("true")
        {
            tracing::debug!(token_id = id, "bootstrap token refused");
            return None;
        }
        if let Some(exp) = data(&obj, "expiration") {
            let expired = exp
                .parse::<jiff::Timestamp>()
                .map(|t| t <= jiff::Timestamp::now())
                .unwrap_or(true);
            if expired {
                tracing::debug!(token_id = id, "bootstrap token expired");
                return None;
            }
        }
        let mut groups = vec!["system:bootstrappers".to_string()];
        if let Some(extra) = data(&obj, "auth-extra-groups") {
            groups.extend(
                extra
                    .split(',')
                    .map(str::trim)
                    .filter(|g| g.starts_with("system:bootstrappers:"))
                    .map(String::from),
            );
        }
        Some(UserInfo {
            name: format!("system:bootstrap:{id}"),
            groups,
            ..Default::default()
        })
    }
}
