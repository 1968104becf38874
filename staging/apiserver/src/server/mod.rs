//! HTTPS serving (upstream `apiserver/pkg/server`): TLS with HTTP/2 and HTTP/1.1, the
//! non-resource endpoints, resource routing, panic recovery and graceful shutdown.

pub mod aggregation;
mod audit;
pub mod healthz;
pub mod inflight;
pub mod tls;

use crate::endpoints::ApiServer;
use crate::endpoints::negotiation::{Body, Format, encode, error_response, response};
use crate::endpoints::openapi::Doc;
use crate::endpoints::request::{RequestInfo, parse_query};
use apimachinery::StatusError;
use futures::FutureExt;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The request header bytes a client may send (Go's `http.DefaultMaxHeaderBytes`).
const MAX_HEADER_BYTES: usize = 1 << 20;

pub struct Server {
    pub api: Arc<ApiServer>,
    pub metrics: crate::endpoints::metrics::ApiMetrics,
    pub health: healthz::Health,
    /// `host:port` advertised in `/api` discovery.
    pub advertise: String,
    pub inflight: inflight::InflightLimits,
    /// API Priority and Fairness (`--enable-priority-and-fairness`); replaces the
    /// max-inflight limits when set.
    pub flowcontrol: Option<Arc<crate::util::flowcontrol::Controller>>,
    pub authn: Arc<crate::authentication::Authenticator>,
    pub authz: Arc<crate::authorization::Chain>,
    /// `--audit-policy-file` + `--audit-log-path`.
    pub audit: Option<Arc<crate::audit::Auditor>>,
    /// Service-account OIDC discovery: the issuer and the keys in the JWKS.
    pub oidc: Option<(
        Arc<crate::authentication::serviceaccount::TokenIssuer>,
        Vec<crate::authentication::jwt::PublicKey>,
    )>,
    /// The API aggregator: group versions other servers serve, by APIService.
    pub aggregator: Option<Arc<dyn aggregation::Aggregator>>,
}

impl Server {
    async fn route(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        info: &RequestInfo,
        query: &std::collections::HashMap<String, String>,
    ) -> Response<Body> {
        let path = req.uri().path().to_string();
        let segs: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        // A group version another server serves is proxied there whole (its discovery
        // and OpenAPI documents included), after authentication and authorization here.
        if let Some(agg) = &self.aggregator
            && let ["apis", g, v, ..] | ["openapi", "v3", "apis", g, v] = segs.as_slice()
            && agg.is_remote(g, v)
        {
            let user = req
                .extensions()
                .get::<crate::authentication::UserInfo>()
                .cloned();
            return agg.proxy(req, g, v, user.as_ref()).await;
        }
        if info.is_resource_request {
            return self.api.serve_resource(req, info, query).await;
        }
        let apiservices = self
            .aggregator
            .as_ref()
            .map(|a| a.group_versions())
            .unwrap_or_default();
        let json = |v: &serde_json::Value| encode(200, v, &Format::Json);
        if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
            return error_response(&StatusError::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ));
        }
        match segs.as_slice() {
            [ep @ ("healthz" | "livez" | "readyz")] => {
                let (code, body) = self.health.serve(ep, None, query).await;
                response(code, "text/plain; charset=utf-8", body)
            }
            [ep @ ("healthz" | "livez" | "readyz"), check] => {
                let (code, body) = self.health.serve(ep, Some(check), query).await;
                response(code, "text/plain; charset=utf-8", body)
            }
            ["version"] => json(&self.api.version),
            [".well-known", "openid-configuration"] if self.oidc.is_some() => {
                let (issuer, _) = self.oidc.as_ref().unwrap();
                let jwks = format!("https://{}/openid/v1/jwks", self.advertise);
                json(&issuer.discovery(&jwks))
            }
            ["openid", "v1", "jwks"] if self.oidc.is_some() => {
                let (_, keys) = self.oidc.as_ref().unwrap();
                let keys: Vec<&serde_json::Value> = keys.iter().map(|k| k.jwk()).collect();
                response(
                    200,
                    "application/jwk-set+json",
                    serde_json::to_vec(&serde_json::json!({"keys": keys})).unwrap_or_default(),
                )
            }
            ["metrics"] => {
                let (text, content_type) = self.metrics.render(&self.api).await;
                response(200, content_type, text)
            }
            ["api"] | ["apis"] if wants_aggregated(&req) => {
                let doc = self
                    .api
                    .aggregated_discovery(segs.len() == 1 && segs[0] == "api", &apiservices);
                let mut r = response(
                    200,
                    AGGREGATED,
                    serde_json::to_vec(&doc).unwrap_or_default(),
                );
                r.headers_mut().insert(
                    hyper::header::VARY,
                    hyper::header::HeaderValue::from_static("Accept"),
                );
                r
            }
            ["api"] => json(&self.api.core_versions(&self.advertise)),
            ["openapi", "v3"] => {
                let mut root = self.api.openapi_v3_root();
                for gv in apiservices.iter().filter(|gv| gv.remote && gv.openapi_v3) {
                    let key = format!("apis/{}/{}", gv.group, gv.version);
                    root["paths"][&key] =
                        serde_json::json!({"serverRelativeURL": format!("/openapi/v3/{key}")});
                }
                json(&root)
            }
            ["openapi", "v3", "api", v] => openapi_doc(&req, self.api.openapi_v3_gv("", v)),
            ["openapi", "v3", "apis", g, v] => openapi_doc(&req, self.api.openapi_v3_gv(g, v)),
            ["openapi", "v2"] if accepts(&req, V2_PROTOBUF) => {
                let doc = self.api.openapi_v2_protobuf();
                // The response names the type without `@` (not a valid media type character).
                response(
                    200,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    doc.0.clone(),
                )
            }
            ["openapi", "v2"] => openapi_doc(&req, Some(self.api.openapi_v2())),
            ["apis"] => json(&self.api.group_list(&apiservices)),
            ["apis", g] => match self.api.group(g, &apiservices) {
                Some(d) => json(&d),
                None => error_response(&StatusError::path_not_found()),
            },
            ["api", v] => match self.api.resource_list("", v) {
                Some(d) => json(&d),
                None => error_response(&StatusError::path_not_found()),
            },
            ["apis", g, v] => match self.api.resource_list(g, v) {
                Some(d) => json(&d),
                None => error_response(&StatusError::path_not_found()),
            },
            [] => {
                let mut paths: Vec<String> = vec![
                    "/api".into(),
                    "/api/v1".into(),
                    "/apis".into(),
                    "/healthz".into(),
                    "/livez".into(),
                    "/readyz".into(),
                    "/version".into(),
                ];
                for (g, vs) in self.api.discovery_groups(&apiservices) {
                    paths.push(format!("/apis/{g}"));
                    paths.extend(vs.iter().map(|v| format!("/apis/{g}/{v}")));
                }
                paths.sort();
                paths.dedup();
                json(&serde_json::json!({"paths": paths}))
            }
            _ => error_response(&StatusError::path_not_found()),
        }
    }

    /// Handles one request; a panic becomes a 500 Status instead of a dropped connection.
    async fn handle(
        self: Arc<Self>,
        mut req: Request<hyper::body::Incoming>,
        client_certs: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        if req.version() < hyper::Version::HTTP_2
            && request_head_bytes(&req) > MAX_HEADER_BYTES + 4096
        {
            // hyper's read buffer only bounds a head it could not parse yet; Go's server
            // refuses any head past its limit, so this one is refused here (its text as Go's).
            let mut resp = Response::new(crate::endpoints::negotiation::full(
                "431 Request Header Fields Too Large",
            ));
            *resp.status_mut() = hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            resp.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            return Ok(resp);
        }
        if method == hyper::Method::CONNECT {
            // No resource is served over CONNECT (streams upgrade GET/POST requests).
            let mut e = StatusError::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            );
            e.details = Some(serde_json::json!({}));
            return Ok(error_response(&e));
        }
        let started = std::time::Instant::now();
        let query = parse_query(req.uri().query());
        let mut info = RequestInfo::parse(method.as_str(), &path, &query);
        let inflight = self.metrics.start(method.as_str());
        let mut user = self.authn.authenticate(&client_certs, req.headers()).await;
        let record = self.audit.as_ref().and_then(|a| {
            let who = user.as_ref().cloned().unwrap_or_default();
            let uri = req.uri().to_string();
            let agent = req
                .headers()
                .get(hyper::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            a.begin(&info, &who, &uri, &peer.ip().to_string(), &agent)
        });
        if let Some(r) = &record {
            req.extensions_mut().insert(r.body.clone());
            info.audit_annotations = Some(r.annotations.clone());
        }
        if let Ok(caller) = user {
            let impersonated = crate::authentication::impersonation::apply(
                caller.clone(),
                req.headers(),
                &self.authz,
            )
            .await;
            if let (Some(r), Ok(target)) = (&record, &impersonated)
                && *target != caller
            {
                r.impersonated(target);
            }
            user = impersonated;
        }
        if let Ok(u) = &user {
            req.extensions_mut().insert(u.clone());
            info.user = Some(u.clone());
            let attrs = crate::authorization::Attributes::of(u, &info);
            if let Err(denied) = self.authz.authorize(&attrs).await {
                user = Err(denied);
            }
        }
        let mut classified = None;
        let admitted = match (user, &self.flowcontrol) {
            (Err(e), _) => Err(e),
            (Ok(u), Some(apf)) if !inflight::is_long_running(&info) => {
                match apf.admit(&u, &info).await {
                    Ok(a) => {
                        classified = a
                            .as_ref()
                            .map(|a| (a.flow_schema_uid.clone(), a.priority_level_uid.clone()));
                        Ok((None, a))
                    }
                    Err(r) => {
                        classified = Some((r.flow_schema_uid, r.priority_level_uid));
                        Err(r.status)
                    }
                }
            }
            (Ok(_), _) => self
                .inflight
                .admit(method.as_str(), &info)
                .map(|permit| (permit, None)),
        };
        let mut resp = match admitted {
            Err(refused) => {
                // Unauthenticated, forbidden or throttled: read no more than Go's server
                // reads after a handler (256 KiB) so the client gets its answer.
                crate::endpoints::negotiation::discard_body(req.into_body(), 256 << 10).await;
                error_response(&refused)
            }
            Ok(_permit) => match AssertUnwindSafe(self.clone().route(req, &info, &query))
                .catch_unwind()
                .await
            {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(%method, %path, "panic while serving request");
                    error_response(&StatusError::internal("an unexpected panic occurred"))
                }
            },
        };
        drop(inflight);
        if let Some((fs, pl)) = classified {
            use crate::util::flowcontrol::{FLOW_SCHEMA_UID_HEADER, PRIORITY_LEVEL_UID_HEADER};
            for (k, v) in [
                (FLOW_SCHEMA_UID_HEADER, fs),
                (PRIORITY_LEVEL_UID_HEADER, pl),
            ] {
                if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
        }
        let dry_run = query.get("dryRun").is_some_and(|d| d == "All");
        self.metrics.observe(
            &info,
            method.as_str(),
            dry_run,
            resp.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        tracing::debug!(%method, %path, status = resp.status().as_u16(), latency_ms = started.elapsed().as_millis() as u64, "request");
        let mut resp = match (&self.audit, record) {
            (Some(a), Some(r)) => audit::finish(a.clone(), r, &info, resp).await,
            _ => resp,
        };
        if let Some(id) = resp
            .extensions()
            .get::<audit::AuditId>()
            .map(|i| i.0.clone())
            && let Ok(v) = hyper::header::HeaderValue::from_str(&id)
        {
            resp.headers_mut().insert("audit-id", v);
        }
        Ok(resp)
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives open
    /// connections (watches included) a short grace period.
    pub async fn run(
        self: Arc<Self>,
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(address = %listener.local_addr()?, "serving securely");
        let acceptor = TlsAcceptor::from(tls);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        // Go's server backs off on accept errors (out of file descriptors, above all)
        // from 5 ms doubling to 1 s, rather than spinning; it keeps serving what it has.
        let mut backoff = Duration::ZERO;
        loop {
            let (tcp, peer) = tokio::select! {
                conn = listener.accept() => match conn {
                    Ok(c) => {
                        backoff = Duration::ZERO;
                        c
                    }
                    Err(e) => {
                        backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                        tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let me = self.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                // The client certificate chain (its key proven in the handshake; which CA
                // vouches for it is checked per request) authenticates every request of
                // the connection.
                let cert: Arc<Vec<_>> = Arc::new(
                    tls.get_ref()
                        .1
                        .peer_certificates()
                        .unwrap_or_default()
                        .iter()
                        .map(|c| c.clone().into_owned())
                        .collect(),
                );
                let service = hyper::service::service_fn(move |req| {
                    me.clone().handle(req, cert.clone(), peer)
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                // Request headers up to Go's `http.DefaultMaxHeaderBytes` (1 MiB), as
                // upstream's server accepts them, on both protocols (h2's default is
                // 16 KiB, hyper's HTTP/1.1 read buffer about 400 KiB; the buffer grows only
                // for requests that need it). Go allows the same 4 KiB of slack.
                builder.http1().max_buf_size(MAX_HEADER_BYTES + 4096);
                builder
                    .http2()
                    .max_header_list_size(MAX_HEADER_BYTES as u32);
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
            });
        }
        tracing::info!("shutting down: no new connections");
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!("closing connections still open after the grace period");
        }
        Ok(())
    }
}

/// The bytes of an HTTP/1.1 request's line and headers, as the client sent them.
fn request_head_bytes<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 11;
    line + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

/// A cached OpenAPI document as JSON; protobuf renderings are not offered (406 lets
/// clients fall back to JSON).
fn openapi_doc(req: &Request<hyper::body::Incoming>, doc: Option<Arc<Doc>>) -> Response<Body> {
    let accept = accept_header(req);
    let entries = accept_entries(req);
    let wants_json = entries.is_empty()
        || entries.iter().any(|e| {
            matches!(
                e[0].to_lowercase().as_str(),
                "application/json" | "*/*" | "application/*"
            )
        });
    match doc {
        None => error_response(&StatusError::path_not_found()),
        Some(_) if !wants_json => error_response(&StatusError::new(
            406,
            "NotAcceptable",
            format!("the backend only supports application/json, not {accept}"),
        )),
        Some(d) => {
            let mut r = response(200, "application/json", d.0.clone());
            if let Ok(etag) = format!("\"{}\"", d.1).parse() {
                r.headers_mut().insert(hyper::header::ETAG, etag);
            }
            r
        }
    }
}

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client's first acceptable discovery form is aggregated discovery
/// (`apidiscovery.k8s.io/v2` in JSON, the form served) rather than the legacy lists:
/// entries are taken in the client's order, forms not served here (protobuf aggregated
/// discovery, other versions) are skipped, as upstream's negotiation skips them.
fn wants_aggregated(req: &Request<hyper::body::Incoming>) -> bool {
    for params in accept_entries(req) {
        let mt = params[0].to_ascii_lowercase();
        let json = matches!(mt.as_str(), "application/json" | "application/*" | "*/*");
        let aggregated = params.contains(&"as=APIGroupDiscoveryList");
        match (json, aggregated) {
            (true, true)
                if params.contains(&"g=apidiscovery.k8s.io") && params.contains(&"v=v2") =>
            {
                return true;
            }
            (true, false) => return false,
            _ => continue,
        }
    }
    false
}

fn accept_header(req: &Request<hyper::body::Incoming>) -> &str {
    req.headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The Accept header's entries, each as its media type followed by its parameters.
fn accept_entries(req: &Request<hyper::body::Incoming>) -> Vec<Vec<&str>> {
    accept_header(req)
        .split(',')
        .map(|e| e.split(';').map(str::trim).collect::<Vec<_>>())
        .filter(|e| !e[0].is_empty())
        .collect()
}

const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Whether the Accept header names this media type.
fn accepts(req: &Request<hyper::body::Incoming>, media: &str) -> bool {
    accept_entries(req).iter().any(|e| e[0] == media)
}
