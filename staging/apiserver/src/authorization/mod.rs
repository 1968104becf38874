//! Request authorization (upstream `apiserver/pkg/authorization` and
//! `plugin/pkg/auth/authorizer/rbac`): `--authorization-mode` is an ordered union of
//! authorizers (AlwaysAllow, AlwaysDeny, RBAC); the first that allows wins, otherwise
//! the request is a 403 with upstream's message.

use crate::authentication::UserInfo;
use crate::endpoints::request::RequestInfo;
use apimachinery::{GroupResource, StatusError};
use async_trait::async_trait;
use std::sync::Arc;

/// What a request asks to do (upstream `authorizer.Attributes`).
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// For non-resource requests.
    pub path: String,
}

impl Attributes {
    pub fn of(user: &UserInfo, info: &RequestInfo) -> Self {
        Attributes {
            user: user.clone(),
            verb: info.verb.clone(),
            resource_request: info.is_resource_request,
            api_group: info.api_group.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            namespace: info.namespace.clone(),
            name: info.name.clone(),
            path: info.path.clone(),
        }
    }
}

#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Whether the request is allowed (false = no opinion; the next authorizer decides).
    async fn allows(&self, a: &Attributes) -> bool;
}

pub struct AlwaysAllow;

#[async_trait]
impl Authorizer for AlwaysAllow {
    async fn allows(&self, _a: &Attributes) -> bool {
        true
    }
}

/// The authorizers of `--authorization-mode`, in order.
pub struct Chain(pub Vec<Arc<dyn Authorizer>>);

impl Chain {
    pub async fn authorize(&self, a: &Attributes) -> Result<(), StatusError> {
        for z in &self.0 {
            if z.allows(a).await {
                return Ok(());
            }
        }
        Err(forbidden(a))
    }
}

/// Upstream's denial: `pods is forbidden: User "alice" cannot list resource "pods" in API
/// group "" in the namespace "default"`.
pub fn forbidden(a: &Attributes) -> StatusError {
    let who = format!("User {:?}", a.user.name);
    if !a.resource_request {
        let mut e = StatusError::new(
            403,
            "Forbidden",
            format!("forbidden: {who} cannot {} path {:?}", a.verb, a.path),
        );
        e.details = Some(serde_json::json!({}));
        return e;
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let detail = format!(
        "{who} cannot {} resource {resource:?} in API group {:?} {scope}",
        a.verb, a.api_group
    );
    StatusError::forbidden(
        &GroupResource::new(&a.api_group, &resource),
        &a.name,
        &detail,
    )
}
