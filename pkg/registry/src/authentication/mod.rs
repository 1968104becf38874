//! The `authentication.k8s.io/v1` group: reviews answered from the request's own
//! authentication (upstream `pkg/registry/authentication`), never stored.

use crate::typed::{Typed, simple};
use apimachinery::StatusError;
use apiserver::authentication::{Authenticator, UserInfo};
use apiserver::endpoints::VirtualRest;
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenReview};
use serde_json::{Value, json};
use std::sync::Arc;

pub fn self_subject_review() -> Typed<SelfSubjectReview> {
    simple(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
        &[],
    )
}

pub fn token_review() -> Typed<TokenReview> {
    simple(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        false,
        &[],
    )
}

/// `kubectl auth whoami`: who the server takes the caller to be.
pub struct SelfSubjectReviews;

#[async_trait]
impl VirtualRest for SelfSubjectReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        _ns: Option<&str>,
        _body: Value,
        user: &UserInfo,
    ) -> Result<Value, StatusError> {
        Ok(
            json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {}, "status": {"userInfo": user.to_json()}}),
        )
    }
}

/// TokenReview: whether a bearer token authenticates, and as whom (webhook token
/// authentication of other components is built on it).
pub struct TokenReviews {
    pub authenticator: Arc<Authenticator>,
}

#[async_trait]
impl VirtualRest for TokenReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        _ns: Option<&str>,
        body: Value,
        _user: &UserInfo,
    ) -> Result<Value, StatusError> {
        let token = body["spec"]["token"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(StatusError::invalid(
                "authentication.k8s.io",
                "TokenReview",
                "",
                vec![apimachinery::Cause::required("spec.token", "")],
            ));
        }
        let audiences: Vec<String> = body["spec"]["audiences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let status = match self
            .authenticator
            .authenticate_token(token, &audiences)
            .await
        {
            Some(u) => {
                json!({"authenticated": true, "user": u.to_json(), "audiences": audiences})
            }
            None => json!({"user": {}, "error": "invalid bearer token"}),
        };
        Ok(
            json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {}, "spec": body["spec"], "status": status}),
        )
    }
}
