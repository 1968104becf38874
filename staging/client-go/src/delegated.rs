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
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use rustls::pki_types::{CertificateDer, UnixTime};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CACHE_TTL: Duration = Duration::from_secs(10);

/// A user's name and groups.
type User = (String, Vec<String>);
/// (user, verb, what: a path or a resource's attributes).
type Request = (String, String, String);

/// What a request acts on, as upstream's `RequestInfoFactory` reads an API path:
/// `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` (and
/// `/api/v1/...`) is a resource, anything else a non-resource path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Path(String),
    Resource {
        group: String,
        version: String,
        namespace: String,
        resource: String,
        subresource: String,
        name: String,
    },
}

/// The verb and target of a request.
pub fn request_target(method: &str, path: &str, query: &str) -> (String, Target) {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return (method.to_ascii_lowercase(), Target::Path(path.to_string())),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (*ns, rest),
        _ => ("", rest),
    };
    let (resource, name, subresource) = match rest {
        [r] => (*r, "", ""),
        [r, n] => (*r, *n, ""),
        [r, n, s, ..] => (*r, *n, *s),
        [] => ("", "", ""),
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, name.is_empty()) {
        ("GET" | "HEAD", true) if watch => "watch",
        ("GET" | "HEAD", true) => "list",
        ("GET" | "HEAD", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "deletecollection",
        ("DELETE", false) => "delete",
        (m, _) => return (m.to_ascii_lowercase(), Target::Path(path.to_string())),
    };
    (
        verb.to_string(),
        Target::Resource {
            group: group.into(),
            version: version.into(),
            namespace: namespace.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
        },
    )
}

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
        target: &Target,
    ) -> Result<bool, (u16, String)> {
        if groups.iter().any(|g| g == "system:masters") {
            return Ok(true);
        }
        let key = (user.to_string(), verb.to_string(), format!("{target:?}"));
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
                non_resource_attributes: match target {
                    Target::Path(path) => Some(NonResourceAttributes {
                        path: Some(path.clone()),
                        verb: Some(verb.to_string()),
                    }),
                    Target::Resource { .. } => None,
                },
                resource_attributes: match target {
                    Target::Path(_) => None,
                    Target::Resource {
                        group,
                        version,
                        namespace,
                        resource,
                        subresource,
                        name,
                    } => Some(ResourceAttributes {
                        group: Some(group.clone()),
                        version: Some(version.clone()),
                        namespace: Some(namespace.clone()).filter(|s| !s.is_empty()),
                        resource: Some(resource.clone()),
                        subresource: Some(subresource.clone()).filter(|s| !s.is_empty()),
                        name: Some(name.clone()).filter(|s| !s.is_empty()),
                        verb: Some(verb.to_string()),
                        ..Default::default()
                    }),
                },
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
        query: &str,
        headers: &http::HeaderMap,
        client_certs: &[CertificateDer<'static>],
    ) -> Result<(), (u16, String)> {
        if self.always_allowed(path) {
            return Ok(());
        }
        let (user, groups) = self.authenticate(headers, client_certs).await?;
        let (verb, target) = request_target(method, path, query);
        if self.allowed(&user, &groups, &verb, &target).await? {
            return Ok(());
        }
        // Upstream's `forbiddenMessage`.
        let message = match &target {
            Target::Path(p) => format!("forbidden: User {user:?} cannot {verb} path {p:?}"),
            Target::Resource {
                group,
                namespace,
                resource,
                subresource,
                ..
            } => {
                let mut r = resource.clone();
                if !group.is_empty() {
                    r = format!("{r}.{group}");
                }
                if !subresource.is_empty() {
                    r = format!("{r}/{subresource}");
                }
                match namespace.is_empty() {
                    true => format!(
                        "{r} is forbidden: User {user:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
                    ),
                    false => format!(
                        "{r} is forbidden: User {user:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {namespace:?}"
                    ),
                }
            }
        };
        Err(status(403, "Forbidden", &message))
    }
}

#[cfg(test)]
mod request_target_tests {
    use super::*;

    #[test]
    fn paths_read_as_upstreams_request_info() {
        let r = |g: &str, ns: &str, res: &str, name: &str| Target::Resource {
            group: g.into(),
            version: if g.is_empty() {
                "v1".into()
            } else {
                "v1beta1".into()
            },
            namespace: ns.into(),
            resource: res.into(),
            subresource: String::new(),
            name: name.into(),
        };
        let cases = [
            (
                "GET",
                "/apis/metrics.k8s.io/v1beta1/nodes",
                "",
                "list",
                r("metrics.k8s.io", "", "nodes", ""),
            ),
            (
                "GET",
                "/apis/metrics.k8s.io/v1beta1/nodes/n1",
                "",
                "get",
                r("metrics.k8s.io", "", "nodes", "n1"),
            ),
            (
                "GET",
                "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods",
                "labelSelector=a%3Db",
                "list",
                r("metrics.k8s.io", "kube-system", "pods", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                "watch=true",
                "watch",
                r("", "default", "pods", ""),
            ),
            (
                "GET",
                "/apis/metrics.k8s.io/v1beta1",
                "",
                "get",
                Target::Path("/apis/metrics.k8s.io/v1beta1".into()),
            ),
            (
                "GET",
                "/healthz",
                "",
                "get",
                Target::Path("/healthz".into()),
            ),
        ];
        for (method, path, query, verb, target) in cases {
            assert_eq!(
                request_target(method, path, query),
                (verb.to_string(), target),
                "{path}"
            );
        }
    }
}
