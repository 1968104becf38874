//! kube-aggregator inside our kube-apiserver (upstream `staging/src/k8s.io/kube-aggregator`):
//! APIServices say which server serves each API group version; the ones naming a
//! Service are proxied to that extension API server, the rest are served here. The
//! controller keeps the local APIServices in step with what this server serves
//! ([`autoregister`]) and every APIService's `Available` condition ([`available`]);
//! discovery merges the extension servers' groups with ours.

pub mod autoregister;
pub mod available;
pub mod controller;
pub mod metrics;
pub mod proxy;
pub mod resolver;

use apiserver::authentication::UserInfo;
use apiserver::endpoints::negotiation::{Body, response};
use apiserver::server::aggregation::GroupVersion;
use async_trait::async_trait;
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How the aggregator reaches and identifies itself to extension servers.
pub struct Config {
    /// `--enable-aggregator-routing`: endpoints instead of cluster IPs.
    pub routing: resolver::Routing,
    /// `--proxy-client-cert-file` / `--proxy-client-key-file`.
    pub proxy_client: Option<proxy::ProxyClientCert>,
    /// The built-in group versions' priorities.
    pub priorities: &'static [autoregister::Priority],
}

/// A remote APIService as its last check left it.
pub struct Remote {
    pub apiservice: String,
    pub namespace: String,
    pub service: String,
    pub available: bool,
    /// Where its Service is reached now.
    pub target: Result<(String, u16), String>,
    pub tls: Result<tokio_rustls::TlsConnector, String>,
}

#[derive(Default)]
pub struct State {
    pub versions: Vec<GroupVersion>,
    pub remote: HashMap<(String, String), Remote>,
}

pub struct Aggregator {
    pub config: Config,
    state: RwLock<Arc<State>>,
    pub metrics: metrics::AvailabilityMetrics,
}

impl Aggregator {
    pub fn new(config: Config) -> Self {
        Aggregator {
            config,
            state: RwLock::default(),
            metrics: metrics::AvailabilityMetrics::default(),
        }
    }

    pub fn state(&self) -> Arc<State> {
        self.state.read().unwrap().clone()
    }

    fn set_state(&self, s: State) {
        *self.state.write().unwrap() = Arc::new(s);
    }
}

/// Upstream's `proxyError`: `http.Error`'s plain text.
fn proxy_error(code: u16, message: &str) -> Response<Body> {
    let mut r = response(
        code,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    r
}

#[async_trait]
impl apiserver::server::aggregation::Aggregator for Aggregator {
    fn is_remote(&self, group: &str, version: &str) -> bool {
        self.state()
            .remote
            .contains_key(&(group.to_string(), version.to_string()))
    }

    async fn proxy(
        &self,
        mut req: Request<hyper::body::Incoming>,
        group: &str,
        version: &str,
        user: Option<&UserInfo>,
    ) -> Response<Body> {
        let state = self.state();
        let Some(remote) = state.remote.get(&(group.to_string(), version.to_string())) else {
            return proxy_error(404, "");
        };
        if !remote.available {
            return proxy_error(503, "service unavailable");
        }
        let tls = match &remote.tls {
            Ok(t) => t.clone(),
            Err(e) => return proxy_error(500, e),
        };
        let Some(user) = user else {
            return proxy_error(500, "missing user");
        };
        let Ok((host, port)) = remote.target.clone() else {
            tracing::error!(apiservice = %remote.apiservice, "resolving its service failed");
            return proxy_error(503, "service unavailable");
        };
        proxy::set_auth_proxy_headers(req.headers_mut(), user);
        let target = component_base::proxy::Target {
            https: true,
            host,
            port,
            path_and_query: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "/".into()),
            server_name: Some(format!("{}.{}.svc", remote.service, remote.namespace)),
        };
        match component_base::proxy::forward(req, &target, tls).await {
            Ok(r) => r,
            Err(e) => proxy_error(503, &e.to_string()),
        }
    }

    fn group_versions(&self) -> Vec<GroupVersion> {
        self.state().versions.clone()
    }
}

/// `(group, version)` of an APIService.
fn group_version(a: &Value) -> (String, String) {
    let s = |k: &str| a["spec"][k].as_str().unwrap_or_default().to_string();
    (s("group"), s("version"))
}
