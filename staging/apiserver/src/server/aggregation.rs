//! What the HTTP server asks of the API aggregator (upstream's kube-aggregator sits in
//! front of the generic apiserver as its delegating handler): which group versions
//! another server serves, proxying to it, and every APIService's group version with its
//! priorities and (for remote ones) the resources its server last reported, for
//! discovery.

use crate::authentication::UserInfo;
use crate::endpoints::negotiation::Body;
use async_trait::async_trait;
use hyper::{Request, Response};
use serde_json::Value;

/// One APIService as discovery needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupVersion {
    pub group: String,
    pub version: String,
    pub group_priority: i32,
    pub version_priority: i32,
    /// Served by another server (the APIService names a Service).
    pub remote: bool,
    /// The `APIResourceList` the remote server answered its last discovery check with.
    pub resources: Option<Value>,
    /// Whether the remote server's `/openapi/v3` lists this group version (the merged
    /// root then names it; its document is proxied).
    pub openapi_v3: bool,
}

#[async_trait]
pub trait Aggregator: Send + Sync {
    /// Whether a remote APIService claims this group version (available or not).
    fn is_remote(&self, group: &str, version: &str) -> bool;

    /// Proxies a request for a remote group version to its server, as `user`.
    async fn proxy(
        &self,
        req: Request<hyper::body::Incoming>,
        group: &str,
        version: &str,
        user: Option<&UserInfo>,
    ) -> Response<Body>;

    /// Every APIService's group version.
    fn group_versions(&self) -> Vec<GroupVersion>;
}
