//! The kubelet API (upstream `pkg/kubelet/server`): HTTPS on `port` (10250) with
//! `/healthz`, `/pods`, `/runningpods/`, `/metrics`, `/configz`, `/stats/summary`,
//! `/containerLogs/{ns}/{pod}/{container}`, and `/exec`, `/attach`, `/portForward`
//! proxied to the runtime's streaming server; plus the plain `/healthz` on
//! `healthzBindAddress:healthzPort` (10248). Requests are authenticated (anonymous if
//! enabled, bearer tokens by TokenReview) and authorized (AlwaysAllow, or a
//! SubjectAccessReview on `nodes/<subresource>` as upstream's Webhook mode).

pub mod logs;

use crate::cri::api;
use crate::kubelet::Kubelet;
use bytes::Bytes;
use component_base::body::{Body, full};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

fn text(code: u16, body: impl Into<Bytes>, ct: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", ct)
        .body(full(body.into()))
        .unwrap()
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    url_pairs(q).into_iter().collect()
}

fn url_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).to_string()
    };
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// Upstream's subresource of `nodes` a kubelet path is authorized as.
fn subresource(path: &str) -> &'static str {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "stats" => "stats",
        "metrics" => "metrics",
        "logs" => "log",
        "spec" => "spec",
        "configz" => "configz",
        "healthz" => "healthz",
        "pods" => "pods",
        "checkpoint" => "checkpoint",
        _ => "proxy",
    }
}

impl Kubelet {
    async fn authorize(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: Option<(String, Vec<String>)>,
    ) -> Result<(), Response<Body>> {
        let token = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let auth = &self.cfg.authentication;
        let (user, groups) = match (peer, token) {
            // A client certificate verified against clientCAFile names the user.
            (Some(u), _) => u,
            (None, Some(t)) if auth.webhook.enabled => {
                let review = TokenReview {
                    spec: TokenReviewSpec {
                        token: Some(t.to_string()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let api: Api<TokenReview> = Api::all(self.client.clone());
                let r = api
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| status(401, "Unauthorized", &format!("Unauthorized: {e}")))?;
                let st = r.status.unwrap_or_default();
                if st.authenticated != Some(true) {
                    return Err(status(401, "Unauthorized", "Unauthorized"));
                }
                let u = st.user.unwrap_or_default();
                (u.username.unwrap_or_default(), u.groups.unwrap_or_default())
            }
            (None, _) if auth.anonymous.enabled => (
                "system:anonymous".to_string(),
                vec!["system:unauthenticated".to_string()],
            ),
            (None, _) => return Err(status(401, "Unauthorized", "Unauthorized")),
        };
        if self.cfg.authorization.mode == "AlwaysAllow" {
            return Ok(());
        }
        let verb = match *req.method() {
            hyper::Method::POST => "create",
            hyper::Method::PUT => "update",
            hyper::Method::PATCH => "patch",
            hyper::Method::DELETE => "delete",
            _ => "get",
        };
        let sub = subresource(req.uri().path());
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.clone()),
                groups: Some(groups),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    resource: Some("nodes".into()),
                    subresource: Some(sub.into()),
                    name: Some(self.node_name.clone()),
                    version: Some("v1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let r = api
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| status(500, "InternalError", &format!("Authorization error: {e}")))?;
        if r.status.is_some_and(|s| s.allowed) {
            Ok(())
        } else {
            Err(status(
                403,
                "Forbidden",
                &format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource={sub})"),
            ))
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        peer: Option<(String, Vec<String>)>,
    ) -> Response<Body> {
        let path = req.uri().path().to_string();
        if path == "/healthz" || path.starts_with("/healthz/") {
            return text(200, "ok", "text/plain; charset=utf-8");
        }
        if let Err(r) = self.authorize(&req, peer).await {
            return r;
        }
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(String::from)
            .collect();
        let q = query_map(req.uri().query());
        match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["pods"] | ["pods", ""] => self.pods_list(false),
            ["runningpods", ..] => self.pods_list(true),
            ["metrics"] => {
                let mut reg = crate::metrics::METRICS.registry();
                let process = component_base::metrics::ProcessMetrics::default();
                process.register(&mut reg);
                process.refresh();
                let (body, ct) = component_base::metrics::render(&reg);
                text(200, body, ct)
            }
            ["configz"] => text(
                200,
                json!({"kubeletconfig": self.cfg}).to_string(),
                "application/json",
            ),
            ["stats", "summary"] => self.summary().await,
            ["metrics", "resource"] => self.resource_metrics().await,
            ["containerLogs", ns, pod, c] => self.container_logs(ns, pod, c, &q).await,
            ["exec", ns, pod, c] | ["exec", ns, pod, _, c] => {
                self.stream(req, "exec", ns, pod, c).await
            }
            ["attach", ns, pod, c] | ["attach", ns, pod, _, c] => {
                self.stream(req, "attach", ns, pod, c).await
            }
            ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
                self.stream(req, "portForward", ns, pod, "").await
            }
            _ => status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            ),
        }
    }

    fn pods_list(&self, running_only: bool) -> Response<Body> {
        let mut items = Vec::new();
        for uid in self.desired_uids() {
            if let Some(p) = self.pod(&uid) {
                if running_only
                    && self
                        .api_pod(&p)
                        .and_then(|a| a.status.clone())
                        .and_then(|s| s.phase)
                        != Some("Running".into())
                {
                    continue;
                }
                let mut v = serde_json::to_value(&p).unwrap_or_default();
                if let Some(api_pod) = self.api_pod(&p) {
                    v["status"] = serde_json::to_value(&api_pod.status).unwrap_or_default();
                }
                items.push(v);
            }
        }
        text(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                .to_string(),
            "application/json",
        )
    }

    /// The pod (by namespace/name) the kubelet runs.
    fn find_pod(&self, ns: &str, name: &str) -> Option<k8s_openapi::api::core::v1::Pod> {
        self.desired_uids()
            .into_iter()
            .filter_map(|u| self.pod(&u))
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.metadata.name.as_deref() == Some(name)
            })
    }

    async fn container_logs(
        &self,
        ns: &str,
        name: &str,
        c: &str,
        q: &HashMap<String, String>,
    ) -> Response<Body> {
        let Some(pod) = self.find_pod(ns, name) else {
            return status(404, "NotFound", &format!("pod \"{name}\" not found"));
        };
        let opts = match logs::LogOptions::from_query(q) {
            Ok(o) => o,
            Err(e) => return status(400, "BadRequest", &e),
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rt = match self.pod_runtime(&uid).await {
            Ok(r) => r,
            Err(e) => return status(500, "InternalError", &e),
        };
        let previous = q.get("previous").is_some_and(|v| v == "true" || v == "1");
        let mut inst = rt.instances(c);
        let target = if previous { inst.nth(1) } else { inst.next() };
        let Some(target) = target.cloned() else {
            let msg = if previous {
                format!("previous terminated container \"{c}\" in pod \"{name}\" not found")
            } else {
                format!(
                    "container \"{c}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                )
            };
            return status(400, "BadRequest", &msg);
        };
        let path = std::path::PathBuf::from(&target.status.log_path);
        let (lines, mut pos) = logs::read_all(&path).unwrap_or_default();
        let first = logs::render(lines.into_iter(), &opts);
        if !opts.follow || !target.running() {
            return text(200, first, "text/plain");
        }
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(16);
        let runtime = self.runtime.clone();
        let id = target.status.id.clone();
        let follow_opts = logs::LogOptions {
            tail: None,
            since: None,
            timestamps: opts.timestamps,
            limit_bytes: None,
            follow: true,
        };
        tokio::spawn(async move {
            if tx
                .send(Ok(hyper::body::Frame::data(Bytes::from(first))))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let new = logs::read_from(&path, &mut pos);
                if !new.is_empty() {
                    let out = logs::render(new.into_iter(), &follow_opts);
                    if tx
                        .send(Ok(hyper::body::Frame::data(Bytes::from(out))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let running = runtime
                    .container_status(&id)
                    .await
                    .is_ok_and(|s| s.state == api::ContainerState::ContainerRunning as i32);
                if !running {
                    let rest = logs::read_from(&path, &mut pos);
                    let _ = tx
                        .send(Ok(hyper::body::Frame::data(Bytes::from(logs::render(
                            rest.into_iter(),
                            &follow_opts,
                        )))))
                        .await;
                    return;
                }
            }
        });
        let body = http_body_util::StreamBody::new(tokio_stream_from(rx)).boxed_unsync();
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(body)
            .unwrap()
    }

    /// Exec, attach and port-forward: the runtime hands out a streaming URL, which the
    /// kubelet proxies (upstream no longer redirects clients to it).
    async fn stream(
        &self,
        req: Request<hyper::body::Incoming>,
        kind: &str,
        ns: &str,
        name: &str,
        c: &str,
    ) -> Response<Body> {
        let Some(pod) = self.find_pod(ns, name) else {
            return status(404, "NotFound", &format!("pod \"{name}\" not found"));
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rt = match self.pod_runtime(&uid).await {
            Ok(r) => r,
            Err(e) => return status(500, "InternalError", &e),
        };
        let pairs = url_pairs(req.uri().query());
        let on = |a: &str, b: &str| {
            pairs
                .iter()
                .any(|(k, v)| (k == a || k == b) && (v == "1" || v == "true"))
        };
        let url = match kind {
            "portForward" => {
                let Some(sb) = rt.sandbox().filter(|_| rt.sandbox_ready()) else {
                    return status(400, "BadRequest", &format!("pod {name} is not running"));
                };
                let ports: Vec<i32> = pairs
                    .iter()
                    .filter(|(k, _)| k == "port")
                    .filter_map(|(_, v)| v.parse().ok())
                    .collect();
                self.runtime.port_forward(&sb.id, ports).await
            }
            _ => {
                let Some(i) = rt.current(c).filter(|i| i.running()) else {
                    return status(
                        400,
                        "BadRequest",
                        &format!("container {c} is not valid for pod {name}"),
                    );
                };
                let (stdin, stdout, stderr, tty) = (
                    on("input", "stdin"),
                    on("output", "stdout"),
                    on("error", "stderr"),
                    on("tty", "tty"),
                );
                if kind == "exec" {
                    let cmd: Vec<String> = pairs
                        .iter()
                        .filter(|(k, _)| k == "command")
                        .map(|(_, v)| v.clone())
                        .collect();
                    if cmd.is_empty() {
                        return status(400, "BadRequest", "you must specify at least 1 command");
                    }
                    self.runtime
                        .exec(api::ExecRequest {
                            container_id: i.status.id.clone(),
                            cmd,
                            tty,
                            stdin,
                            stdout,
                            stderr: stderr && !tty,
                        })
                        .await
                } else {
                    self.runtime
                        .attach(api::AttachRequest {
                            container_id: i.status.id.clone(),
                            stdin,
                            tty,
                            stdout,
                            stderr: stderr && !tty,
                        })
                        .await
                }
            }
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => return status(500, "InternalError", e.message()),
        };
        let Ok(uri) = url.parse::<hyper::Uri>() else {
            return status(
                500,
                "InternalError",
                &format!("invalid streaming URL {url:?}"),
            );
        };
        let target = component_base::proxy::Target {
            https: uri.scheme_str() == Some("https"),
            host: uri.host().unwrap_or("127.0.0.1").to_string(),
            port: uri.port_u16().unwrap_or(80),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        };
        // The runtime's streaming server is local; its certificate (if any) is its own.
        let tls = component_base::tls::unverified_tls();
        match component_base::proxy::forward(req, &target, tls).await {
            Ok(r) => r,
            Err(e) => status(500, "InternalError", &e.to_string()),
        }
    }

    /// Running containers of every pod with their cgroup usage:
    /// (pod, [(container name, start nanos, usage)], pod usage).
    async fn usage(
        &self,
    ) -> Vec<(
        k8s_openapi::api::core::v1::Pod,
        Vec<(String, i64, crate::stats::Usage)>,
        Option<crate::stats::Usage>,
    )> {
        let mut out = Vec::new();
        for uid in self.desired_uids() {
            let Some(p) = self.pod(&uid) else { continue };
            let rt = self.pod_runtime(&uid).await.unwrap_or_default();
            let parent = self.cm.pod_cgroup(&p);
            let containers = rt
                .containers
                .iter()
                .filter(|i| i.running())
                .filter_map(|i| {
                    let u = crate::stats::cgroup_usage(
                        &self.cm.container_cgroup(&parent, &i.status.id),
                    )?;
                    Some((i.name().to_string(), i.status.started_at, u))
                })
                .collect();
            out.push((p, containers, crate::stats::cgroup_usage(&parent)));
        }
        out
    }

    /// The Summary API (`/stats/summary`): node and per-pod/container CPU and memory.
    async fn summary(&self) -> Response<Body> {
        let now = jiff::Timestamp::now().to_string();
        let (total, avail) = crate::nodestatus::fs_usage(&self.root);
        let node = crate::stats::node_usage(self.memory_capacity);
        let mem_avail = crate::nodestatus::memory_available();
        let ts = |n: i64| {
            jiff::Timestamp::from_nanosecond(n as i128)
                .unwrap_or_default()
                .to_string()
        };
        let mut pods = Vec::new();
        for (p, containers, pod_usage) in self.usage().await {
            let cs: Vec<_> = containers
                .iter()
                .map(|(name, started, u)| json!({"name": name, "startTime": ts(*started),
                    "cpu": {"time": now, "usageCoreNanoSeconds": u.cpu_ns},
                    "memory": {"time": now, "usageBytes": u.memory_usage, "workingSetBytes": u.working_set}}))
                .collect();
            let mut pod = json!({
                "podRef": {"name": p.metadata.name, "namespace": p.metadata.namespace, "uid": p.metadata.uid},
                "startTime": p.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0.to_string()),
                "containers": cs,
            });
            if let Some(u) = pod_usage {
                pod["cpu"] = json!({"time": now, "usageCoreNanoSeconds": u.cpu_ns});
                pod["memory"] = json!({"time": now, "usageBytes": u.memory_usage, "workingSetBytes": u.working_set});
            }
            pods.push(pod);
        }
        let body = json!({
            "node": {
                "nodeName": self.node_name,
                "startTime": now,
                "cpu": {"time": now, "usageCoreNanoSeconds": node.cpu_ns},
                "memory": {"time": now, "availableBytes": mem_avail, "usageBytes": node.memory_usage, "workingSetBytes": node.working_set},
                "fs": {"time": now, "capacityBytes": total, "availableBytes": avail, "usedBytes": total.saturating_sub(avail)},
            },
            "pods": pods,
        });
        text(200, body.to_string(), "application/json")
    }

    /// `/metrics/resource` (what metrics-server scrapes): upstream's stable resource
    /// metrics with sample timestamps.
    async fn resource_metrics(&self) -> Response<Body> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let node = crate::stats::node_usage(self.memory_capacity);
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, String)>| {
            out.push_str(&format!(
                "# HELP {name} [STABLE] {help}\n# TYPE {name} {kind}\n"
            ));
            for (labels, v) in samples {
                out.push_str(&format!("{name}{labels} {v} {now_ms}\n"));
            }
        };
        let usage = self.usage().await;
        let lbl = |p: &k8s_openapi::api::core::v1::Pod, c: Option<&str>| {
            let (ns, name) = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            match c {
                Some(c) => format!("{{container=\"{c}\",namespace=\"{ns}\",pod=\"{name}\"}}"),
                None => format!("{{namespace=\"{ns}\",pod=\"{name}\"}}"),
            }
        };
        let secs = |ns: u64| format!("{:.9}", ns as f64 / 1e9);
        family(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the container in core-seconds",
            "counter",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, _, u)| (lbl(p, Some(c)), secs(u.cpu_ns)))
                })
                .collect(),
        );
        family(
            "container_memory_working_set_bytes",
            "Current working set of the container in bytes",
            "gauge",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, _, u)| (lbl(p, Some(c)), u.working_set.to_string()))
                })
                .collect(),
        );
        family(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds",
            "gauge",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, s, _)| (lbl(p, Some(c)), format!("{:.9}", *s as f64 / 1e9)))
                })
                .collect(),
        );
        family(
            "node_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the node in core-seconds",
            "counter",
            vec![(String::new(), secs(node.cpu_ns))],
        );
        family(
            "node_memory_working_set_bytes",
            "Current working set of the node in bytes",
            "gauge",
            vec![(String::new(), node.working_set.to_string())],
        );
        family(
            "pod_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
            usage
                .iter()
                .filter_map(|(p, _, u)| u.map(|u| (lbl(p, None), secs(u.cpu_ns))))
                .collect(),
        );
        family(
            "pod_memory_working_set_bytes",
            "Current working set of the pod in bytes",
            "gauge",
            usage
                .iter()
                .filter_map(|(p, _, u)| u.map(|u| (lbl(p, None), u.working_set.to_string())))
                .collect(),
        );
        out.push_str("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n");
        text(200, out, "text/plain; version=0.0.4; charset=utf-8")
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Serves the kubelet API until `shutdown` fires.
pub async fn serve(
    k: Arc<Kubelet>,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "Starting to listen");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, k) = (acceptor.clone(), k.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            // The user of a verified client certificate (CN, O as groups).
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(component_base::authentication::x509_user)
                .map(|u| (u.name, u.groups));
            let service = hyper::service::service_fn(move |req| {
                let (k, peer) = (k.clone(), peer.clone());
                async move { Ok::<_, std::convert::Infallible>(k.handle(req, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The plain-HTTP `/healthz` (healthzBindAddress:healthzPort).
pub async fn serve_healthz(
    addr: std::net::SocketAddr,
    healthy: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let healthy = healthy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let healthy = healthy.clone();
                async move {
                    let r = if req.uri().path() == "/healthz" {
                        match healthy() {
                            Ok(()) => text(200, "ok", "text/plain; charset=utf-8"),
                            Err(e) => text(
                                500,
                                format!("[+]ping ok\n[+]log ok\n{e}\nhealthz check failed\n"),
                                "text/plain; charset=utf-8",
                            ),
                        }
                    } else {
                        text(404, "404 page not found", "text/plain; charset=utf-8")
                    };
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
