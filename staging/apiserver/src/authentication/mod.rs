//! Request authentication (upstream `apiserver/pkg/authentication`): a union of
//! authenticators, first success wins — x509 client certificates verified against
//! `--client-ca-file` (CN = user, O = groups), bearer tokens (`--token-auth-file`,
//! bootstrap tokens, service-account JWTs), and
//! `system:anonymous` when `--anonymous-auth` allows it. Credentials that are presented
//! but not valid are a 401 `Status`, never anonymous.

pub mod bootstrap;
pub mod impersonation;
pub mod jwt;
pub mod serviceaccount;
pub mod token_file;
pub mod x509;

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
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
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

    /// Authenticates a request from its verified client certificate and headers.
    pub async fn authenticate(
        &self,
        client_cert: Option<&CertificateDer<'static>>,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, StatusError> {
        if let Some(cert) = client_cert {
            return x509::user(cert).map(UserInfo::authenticated);
        }
        if let Some(token) = bearer(headers) {
            return self
                .authenticate_token(token, &[])
                .await
                .ok_or_else(unauthorized);
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(unauthorized())
    }
}
