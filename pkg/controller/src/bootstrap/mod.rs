//! Bootstrap-token controllers (upstream `pkg/controller/bootstrap`), used by `kubeadm
//! join`: the signer publishes a JWS of the `kube-public/cluster-info` kubeconfig per
//! signing token, the cleaner deletes expired tokens.

pub mod bootstrapsigner;
pub mod tokencleaner;

use k8s_openapi::api::core::v1::Secret;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const SECRET_PREFIX: &str = "bootstrap-token-";

/// A string field of the token Secret.
pub fn field(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// Whether the token's `expiration` has passed (a token without one never expires).
pub fn expired(s: &Secret, now: jiff::Timestamp) -> bool {
    field(s, "expiration")
        .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t <= now)
}

/// (token id, token secret) of a well-formed bootstrap token Secret: type, name
/// `bootstrap-token-<id>`, a 6-character id and 16-character secret of `[a-z0-9]`.
pub fn token(s: &Secret) -> Option<(String, String)> {
    if s.type_.as_deref() != Some(SECRET_TYPE) {
        return None;
    }
    let id = field(s, "token-id")?;
    let secret = field(s, "token-secret")?;
    let ok = |v: &str, n: usize| {
        v.len() == n
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let named = s.metadata.name.as_deref() == Some(&format!("{SECRET_PREFIX}{id}"));
    (ok(&id, 6) && ok(&secret, 16) && named).then_some((id, secret))
}
