//! Request authentication (upstream `apiserver/pkg/authentication`): a union of
//! authenticators, first success wins — a front proxy's headers (`--requestheader-*`),
//! x509 client certificates verified against `--client-ca-file` (CN = user, O = groups),
//! bearer tokens (`--token-auth-file`,
//! bootstrap tokens, service-account JWTs), and
//! `system:anonymous` when `--anonymous-auth` allows it. Credentials that are presented
//! but not valid are a 401 `Status`, never anonymous.

pub mod impersonation;
pub use ::serviceaccount::jwt;
pub mod request_header;
pub mod serviceaccount;
pub mod token_file;
pub mod x509;
pub use component_base::x509_verify;

use apimachinery::StatusError;
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ALL_AUTHENTICATED: &str = "system:authenticated";
pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";

/// Who made a request (upstream `user.Info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<component_base::authentication::User> for UserInfo {
    fn from(u: component_base::authentication::User) -> Self {
        UserInfo {
            name: u.name,
            uid: u.uid,
            groups: u.groups,
            extra: u.extra,
        }
    }
}

impl UserInfo {
    /// An authenticated user also belongs to `system:authenticated`.
    pub fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.into());
        }
        self
    }

    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Default::default()
        }
    }

    /// The `userInfo` of TokenReview / SelfSubjectReview status.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }
}

pub fn unauthorized() -> StatusError {
    StatusError::new(401, "Unauthorized", "Unauthorized")
}

/// One kind of bearer token (token file, bootstrap tokens, service-account JWTs).
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync {
    /// The user a token names, when this authenticator knows it and it is valid for one
    /// of `audiences` (empty: the apiserver's own audiences).
    async fn authenticate(&self, token: &str, audiences: &[String]) -> Option<UserInfo>;
}

#[async_trait::async_trait]
impl TokenAuthenticator for token_file::TokenFile {
    async fn authenticate(&self, token: &str, _audiences: &[String]) -> Option<UserInfo> {
        self.user(token)
    }
}

#[derive(Default)]
pub struct Authenticator {
    /// Tried in order; registry-backed ones are added once storage is up.
    pub tokens: std::sync::RwLock<Vec<std::sync::Arc<dyn TokenAuthenticator>>>,
    pub anonymous: bool,
    /// `--client-ca-file`: client certificates chaining to it name their user.
    pub client_ca: Option<std::sync::Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    /// `--requestheader-*`: a front proxy names the user in headers.
    pub request_header: Option<request_header::RequestHeader>,
}

/// The bearer token of a request, parsed as upstream's `bearertoken` authenticator does:
/// the scheme is case-insensitive, the token is the second space-separated part (so an
/// extra space before it leaves no token), and anything after it is ignored.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?
        .trim();
    let mut parts = auth.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Authenticator {
    pub fn add_tokens(&self, t: std::sync::Arc<dyn TokenAuthenticator>) {
        self.tokens.write().unwrap().push(t);
    }

    /// The user a bearer token names, if any token authenticator vouches for it.
    pub async fn authenticate_token(&self, token: &str, audiences: &[String]) -> Option<UserInfo> {
        let authenticators = self.tokens.read().unwrap().clone();
        for a in authenticators {
            if let Some(u) = a.authenticate(token, audiences).await {
                return Some(u.authenticated());
            }
        }
        None
    }

    /// Authenticates a request from its client certificate chain (verified in the TLS
    /// handshake against every client CA) and its headers. As upstream's union, a
    /// credential that fails does not stop the next kind from succeeding, but a request
    /// whose every presented credential failed is not anonymous.
    pub async fn authenticate(
        &self,
        client_certs: &[CertificateDer<'static>],
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, StatusError> {
        let mut failed = false;
        if let Some(rh) = &self.request_header {
            match rh.authenticate(client_certs, headers) {
                Ok(Some(u)) => return Ok(UserInfo::from(u).authenticated()),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if let (Some((leaf, intermediates)), Some(ca)) =
            (client_certs.split_first(), &self.client_ca)
        {
            let verified = ca
                .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
                .is_ok();
            match verified.then(|| x509::user(leaf)) {
                Some(Ok(u)) => return Ok(u.authenticated()),
                _ => failed = true,
            }
        }
        if let Some(token) = bearer(headers) {
            return self
                .authenticate_token(token, &[])
                .await
                .ok_or_else(unauthorized);
        }
        if self.anonymous && !failed {
            return Ok(UserInfo::anonymous());
        }
        Err(unauthorized())
    }
}

#[cfg(test)]
mod bearer_tests {
    use super::bearer;

    fn token(v: &str) -> Option<String> {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        bearer(&h).map(String::from)
    }

    #[test]
    fn parsed_as_upstream() {
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("  BEARER abc  ").as_deref(), Some("abc"));
        assert_eq!(token("Bearer abc def").as_deref(), Some("abc"));
        assert_eq!(token("Bearer  abc"), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Basic abc"), None);
    }
}
