//! Service-account tokens (upstream `pkg/serviceaccount`): bound tokens issued through
//! TokenRequest (audiences, expiry, the pod/secret/node they are bound to) and legacy
//! secret-based ones, and the authenticator that accepts them only while the service
//! account — and the object a token is bound to — still exist with the same UID.

use super::jwt::{self, PublicKey, Signer};
use super::{TokenAuthenticator, UserInfo};
use crate::registry::generic::Registry;
pub use ::serviceaccount::{LEGACY_ISSUER, groups, username};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Leeway for clock skew on `exp` / `nbf`.
const LEEWAY_SECS: i64 = 60;

/// Issues tokens: `--service-account-issuer` (the first), the signing key, the default
/// audiences (`--api-audiences`).
pub struct TokenIssuer {
    pub issuer: String,
    pub signer: Signer,
    pub audiences: Vec<String>,
    /// `--service-account-max-token-expiration` in seconds (0 = none).
    pub max_expiration: i64,
    /// `--service-account-extend-token-expiration`.
    pub extend_expiration: bool,
}

/// What a bound token is bound to.
pub struct Binding {
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// For pods: the node they run on (name, uid) when known.
    pub node: Option<(String, String)>,
}

/// The kubelet asks for 3607 s; such pod-bound tokens are valid a year but say to refresh
/// after the requested time (upstream `ExpirationExtensionSeconds`).
pub const WARN_ONLY_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: i64 = 365 * 24 * 3600;

impl TokenIssuer {
    /// Signs a bound token; returns it with its expiry (unix seconds).
    pub fn issue(
        &self,
        namespace: &str,
        sa: &Value,
        audiences: &[String],
        expiration: i64,
        binding: Option<&Binding>,
    ) -> Result<(String, i64), String> {
        let now = jiff::Timestamp::now().as_second();
        let mut lifetime = expiration;
        if self.max_expiration > 0 {
            lifetime = lifetime.min(self.max_expiration);
        }
        let mut warn_after = None;
        if self.extend_expiration
            && expiration == WARN_ONLY_EXPIRATION
            && binding.is_some_and(|b| b.kind == "Pod")
        {
            warn_after = Some(now + expiration);
            lifetime = EXTENDED_EXPIRATION;
        }
        let exp = now + lifetime;
        let mut private = json!({
            "namespace": namespace,
            "serviceaccount": {"name": sa["metadata"]["name"], "uid": sa["metadata"]["uid"]},
        });
        if let Some(b) = binding {
            let key = b.kind.to_lowercase();
            private[&key] = json!({"name": b.name, "uid": b.uid});
            if let Some((node, uid)) = &b.node {
                private["node"] = json!({"name": node, "uid": uid});
            }
        }
        if let Some(w) = warn_after {
            private["warnafter"] = json!(w);
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": username(namespace, sa["metadata"]["name"].as_str().unwrap_or_default()),
            "kubernetes.io": private,
        });
        Ok((self.signer.sign(&claims)?, exp))
    }

    /// `/.well-known/openid-configuration`, with the JWKS served at `jwks_uri`.
    pub fn discovery(&self, jwks_uri: &str) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.signer.public_key().alg],
        })
    }
}

/// The registries a token's claims are checked against.
pub struct Lookup {
    pub serviceaccounts: Arc<Registry>,
    pub pods: Arc<Registry>,
    pub secrets: Arc<Registry>,
    pub nodes: Arc<Registry>,
}

pub struct ServiceAccountTokens {
    /// `--service-account-issuer` values accepted.
    pub issuers: Vec<String>,
    pub keys: Vec<PublicKey>,
    /// `--api-audiences`.
    pub audiences: Vec<String>,
    pub lookup: Lookup,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

impl Lookup {
    /// The live object with this UID (not being deleted), else why not.
    async fn live(
        &self,
        reg: &Registry,
        ns: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Result<Value, String> {
        let kind = &reg.strategy.info().gvk.kind;
        let obj = reg
            .get(ns, name)
            .await
            .map_err(|_| format!("{kind} {name:?} not found"))?;
        if !uid.is_empty() && obj["metadata"]["uid"] != uid {
            return Err(format!(
                "{kind} UID ({}) does not match claim ({uid})",
                s(&obj["metadata"]["uid"])
            ));
        }
        if obj["metadata"]["deletionTimestamp"].is_string() {
            return Err(format!("{kind} {name:?} is being deleted"));
        }
        Ok(obj)
    }
}

impl ServiceAccountTokens {
    /// Checks a verified token's claims; the user it names, or why it is refused.
    async fn validate(&self, claims: &Value, audiences: &[String]) -> Result<UserInfo, String> {
        let now = jiff::Timestamp::now().as_second();
        let iss = s(&claims["iss"]);
        if iss == LEGACY_ISSUER {
            return self.validate_legacy(claims).await;
        }
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(format!("issuer {iss:?} is not trusted"));
        }
        let exp = claims["exp"].as_i64().ok_or("token has no expiry")?;
        if now > exp + LEEWAY_SECS {
            return Err("token has expired".into());
        }
        if claims["nbf"]
            .as_i64()
            .is_some_and(|nbf| now + LEEWAY_SECS < nbf)
        {
            return Err("token is not valid yet".into());
        }
        let wanted = if audiences.is_empty() {
            &self.audiences
        } else {
            audiences
        };
        let token_aud: Vec<&str> = match &claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            a => a
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
        };
        if !token_aud.iter().any(|a| wanted.iter().any(|w| w == a)) {
            return Err("token audiences do not match".into());
        }
        let k = &claims["kubernetes.io"];
        let ns = s(&k["namespace"]);
        let sa_name = s(&k["serviceaccount"]["name"]);
        if ns.is_empty() || sa_name.is_empty() {
            return Err("token carries no service account".into());
        }
        self.lookup
            .live(
                &self.lookup.serviceaccounts,
                Some(ns),
                sa_name,
                s(&k["serviceaccount"]["uid"]),
            )
            .await?;
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if k["pod"].is_object() {
            let (name, uid) = (s(&k["pod"]["name"]), s(&k["pod"]["uid"]));
            self.lookup
                .live(&self.lookup.pods, Some(ns), name, uid)
                .await?;
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![name.into()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![uid.into()],
            );
        }
        if k["secret"].is_object() {
            self.lookup
                .live(
                    &self.lookup.secrets,
                    Some(ns),
                    s(&k["secret"]["name"]),
                    s(&k["secret"]["uid"]),
                )
                .await?;
        }
        if k["node"].is_object() {
            let (name, uid) = (s(&k["node"]["name"]), s(&k["node"]["uid"]));
            // A pod's node is informational; a token bound to a node needs it to exist.
            if !k["pod"].is_object() {
                self.lookup
                    .live(&self.lookup.nodes, None, name, uid)
                    .await?;
            }
            extra.insert(
                "authentication.kubernetes.io/node-name".into(),
                vec![name.into()],
            );
            extra.insert(
                "authentication.kubernetes.io/node-uid".into(),
                vec![uid.into()],
            );
        }
        if let Some(jti) = claims["jti"].as_str() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(UserInfo {
            name: username(ns, sa_name),
            uid: s(&k["serviceaccount"]["uid"]).to_string(),
            groups: groups(ns),
            extra,
        })
    }

    /// Tokens of `kubernetes.io/service-account-token` Secrets: valid while the Secret
    /// and its service account exist.
    async fn validate_legacy(&self, claims: &Value) -> Result<UserInfo, String> {
        let c = |k: &str| s(&claims[format!("kubernetes.io/serviceaccount/{k}")]).to_string();
        let (ns, secret, sa, uid) = (
            c("namespace"),
            c("secret.name"),
            c("service-account.name"),
            c("service-account.uid"),
        );
        if ns.is_empty() || sa.is_empty() || secret.is_empty() {
            return Err("legacy token lacks its claims".into());
        }
        let secret_obj = self
            .lookup
            .live(&self.lookup.secrets, Some(&ns), &secret, "")
            .await?;
        if secret_obj["metadata"]["annotations"]["kubernetes.io/service-account.uid"]
            != uid.as_str()
        {
            return Err("the token's secret belongs to another service account".into());
        }
        self.lookup
            .live(&self.lookup.serviceaccounts, Some(&ns), &sa, &uid)
            .await?;
        Ok(UserInfo {
            name: username(&ns, &sa),
            uid,
            groups: groups(&ns),
            extra: BTreeMap::new(),
        })
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for ServiceAccountTokens {
    async fn authenticate(&self, token: &str, audiences: &[String]) -> Option<UserInfo> {
        if !jwt::looks_like_jwt(token) {
            return None;
        }
        let result = match jwt::verify(token, &self.keys) {
            Ok((_, claims)) => self.validate(&claims, audiences).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(u) => Some(u),
            Err(why) => {
                tracing::debug!(reason = %why, "service account token refused");
                None
            }
        }
    }
}
