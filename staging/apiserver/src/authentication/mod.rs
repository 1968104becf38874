//! Request authentication (upstream `apiserver/pkg/authentication`): a union of
//! authenticators, first success wins — x509 client certificates verified against
//! `--client-ca-file` (CN = user, O = groups), bearer tokens from `--token-auth-file`, and
//! `system:anonymous` when `--anonymous-auth` allows it. Credentials that are presented
//! but not valid are a 401 `Status`, never anonymous.

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
    fn authenticated(mut self) -> Self {
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

#[derive(Default)]
pub struct Authenticator {
    pub tokens: Option<token_file::TokenFile>,
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
    /// The user a request's bearer token names, if any token authenticator knows it.
    pub fn authenticate_token(&self, headers: &http::HeaderMap) -> Option<UserInfo> {
        let token = bearer(headers)?;
        self.tokens
            .as_ref()?
            .user(token)
            .map(UserInfo::authenticated)
    }

    /// Authenticates a request from its verified client certificate and headers.
    pub fn authenticate(
        &self,
        client_cert: Option<&CertificateDer<'static>>,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, StatusError> {
        if let Some(cert) = client_cert {
            return x509::user(cert).map(UserInfo::authenticated);
        }
        if bearer(headers).is_some() && self.tokens.is_some() {
            return self.authenticate_token(headers).ok_or_else(unauthorized);
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(unauthorized())
    }
}
