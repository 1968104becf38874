//! Delegated authentication and authorization for a component's secure port (upstream
//! `apiserver/pkg/authentication/authenticatorfactory` + `authorization/authorizerfactory`
//! as the scheduler and controller-manager use them): a front proxy's headers vouched for
//! by its `--requestheader-client-ca-file` certificate, then x509 client certificates
//! verified against `--client-ca-file` (CN = user, O = groups), then bearer tokens
//! checked with a TokenReview; requests are authorized with a SubjectAccessReview against
//! the apiserver named by `--authentication-kubeconfig` / `--authorization-kubeconfig`;
//! paths in `--authorization-always-allow-paths` and the `system:masters` group need no
//! review; decisions are cached for 10 s.

use component_base::authentication::RequestHeader;
use component_base::x509_verify::ClientCaVerifier;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use rustls::pki_types::{CertificateDer, UnixTime};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CACHE_TTL: Duration = Duration::from_secs(10);

/// A user's name and groups.
type User = (String, Vec<String>);
/// (user, verb, path).
type Request = (String, String, String);

pub struct DelegatedAuth {
    pub authentication: Option<kube::Client>,
    pub authorization: Option<kube::Client>,
    pub always_allow_paths: Vec<String>,
    /// `--client-ca-file`: client certificates chaining to it name their user.
    pub client_ca: Option<ClientCaVerifier>,
    /// `--requestheader-*`: a front proxy names the user in headers.
    pub request_header: Option<RequestHeader>,
    tokens: Mutex<HashMap<String, (Option<User>, Instant)>>,
    decisions: Mutex<HashMap<Request, (bool, Instant)>>,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, String) {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (code, body.to_string())
}

impl DelegatedAuth {
    pub fn new(
        authentication: Option<kube::Client>,
        authorization: Option<kube::Client>,
        always_allow_paths: Vec<String>,
    ) -> Self {
        DelegatedAuth {
            authentication,
            authorization,
            always_allow_paths,
            client_ca: None,
            request_header: None,
            tokens: Mutex::default(),
            decisions: Mutex::default(),
        }
    }

    fn always_allowed(&self, path: &str) -> bool {
        self.always_allow_paths
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => p == path,
            })
    }

    /// The user a token names, via TokenReview (None: not authenticated).
    async fn user(&self, token: &str) -> Result<Option<User>, (u16, String)> {
        if let Some((u, at)) = self.tokens.lock().unwrap().get(token)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(u.clone());
        }
        let Some(client) = &self.authentication else {
            return Ok(None);
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(client.clone());
        let r = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                status(
                    500,
                    "InternalError",
                    &format!("Internal error occurred: {e}"),
                )
            })?;
        let st = r.status.unwrap_or_default();
        let user = st.authenticated.unwrap_or(false).then(|| {
            let u = st.user.unwrap_or_default();
            (u.username.unwrap_or_default(), u.groups.unwrap_or_default())
        });
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_string(), (user.clone(), Instant::now()));
        Ok(user)
    }

    /// Who made a request, as upstream's union of authenticators: the front proxy, the
    /// client certificate, the bearer token, else anonymous — unless a credential was
    /// presented and failed.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        client_certs: &[CertificateDer<'static>],
    ) -> Result<User, (u16, String)> {
        let unauthorized = || status(401, "Unauthorized", "Unauthorized");
        let mut failed = false;
        if let Some(rh) = &self.request_header {
            match rh.authenticate(client_certs, headers) {
                Ok(Some(u)) => return Ok((u.name, u.groups)),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if let (Some((leaf, intermediates)), Some(ca)) =
            (client_certs.split_first(), &self.client_ca)
        {
            let user = ca
                .verify(leaf, intermediates, UnixTime::now())
                .ok()
                .and_then(|_| component_base::authentication::x509_user(leaf));
            match user {
                Some(u) => return Ok((u.name, u.groups)),
                None => failed = true,
            }
        }
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match token {
            Some(t) => self.user(t).await?.ok_or_else(unauthorized),
            None if failed => Err(unauthorized()),
            None => Ok((
                "system:anonymous".to_string(),
                vec!["system:unauthenticated".to_string()],
            )),
        }
    }

    async fn allowed(
        &self,
        user: &str,
        groups: &[String],
        verb: &str,
        path: &str,
    ) -> Result<bool, (u16, String)> {
        if groups.iter().any(|g| g == "system:masters") {
            return Ok(true);
        }
        let key = (user.to_string(), verb.to_string(), path.to_string());
        if let Some((ok, at)) = self.decisions.lock().unwrap().get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(*ok);
        }
        let Some(client) = &self.authorization else {
            return Ok(false);
        };
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.to_string()),
                groups: Some(groups.to_vec()),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_string()),
                    verb: Some(verb.to_string()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(client.clone());
        let r = api
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| {
                status(
                    500,
                    "InternalError",
                    &format!("Internal error occurred: {e}"),
                )
            })?;
        let ok = r.status.is_some_and(|s| s.allowed);
        self.decisions
            .lock()
            .unwrap()
            .insert(key, (ok, Instant::now()));
        Ok(ok)
    }
}

#[async_trait::async_trait]
impl component_base::serving::RequestAuthorizer for DelegatedAuth {
    async fn authorize(
        &self,
        method: &str,
        path: &str,
        headers: &http::HeaderMap,
        client_certs: &[CertificateDer<'static>],
    ) -> Result<(), (u16, String)> {
        if self.always_allowed(path) {
            return Ok(());
        }
        let (user, groups) = self.authenticate(headers, client_certs).await?;
        let verb = method.to_ascii_lowercase();
        if self.allowed(&user, &groups, &verb, path).await? {
            Ok(())
        } else {
            Err(status(
                403,
                "Forbidden",
                &format!("forbidden: User {user:?} cannot {verb} path {path:?}"),
            ))
        }
    }
}
