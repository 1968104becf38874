//! The streaming pod subresources (upstream `pkg/registry/core/pod/rest` and
//! `pkg/registry/core/node/rest`): `log`, `exec`, `attach` and `portforward` go to the
//! kubelet of the pod's node, `proxy` to the pod itself; node and service `proxy` as well.

use apimachinery::{GroupResource, StatusError};
use apiserver::endpoints::ConnectHandler;
use apiserver::endpoints::negotiation::Body;
use apiserver::endpoints::request::RequestInfo;
use apiserver::proxy::{Target, forward};
use apiserver::registry::generic::Registry;
use apiserver::util::proxy::{streamtranslator, streamtunnel};
use async_trait::async_trait;
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Upstream's default `--kubelet-preferred-address-types`.
const ADDRESS_TYPES: [&str; 5] = [
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// How the apiserver reaches kubelets (upstream `pkg/kubelet/client.KubeletClientConfig`).
pub struct KubeletClient {
    /// The TLS client (`apiserver::proxy::kubelet_tls`).
    pub tls: apiserver::proxy::TlsConnector,
    /// `--kubelet-preferred-address-types` (kubeadm: InternalIP,ExternalIP,Hostname);
    /// empty: upstream's default order.
    pub preferred_address_types: Vec<String>,
}

impl KubeletClient {
    /// Where a node's kubelet listens: its preferred address and `daemonEndpoints` port.
    pub fn endpoint(&self, node: &Value) -> Option<(String, u16)> {
        let preferred: Vec<&str> = if self.preferred_address_types.is_empty() {
            ADDRESS_TYPES.to_vec()
        } else {
            self.preferred_address_types
                .iter()
                .map(String::as_str)
                .collect()
        };
        let addrs = node["status"]["addresses"].as_array()?;
        let host = preferred.iter().find_map(|t| {
            addrs
                .iter()
                .find(|a| a["type"] == *t)
                .and_then(|a| a["address"].as_str())
                .filter(|a| !a.is_empty())
        })?;
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .filter(|p| *p > 0)
            .unwrap_or(10250) as u16;
        Some((host.to_string(), port))
    }
}

fn query_string(q: &HashMap<String, String>, skip: &[&str]) -> String {
    let mut pairs: Vec<(&String, &String)> = q
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    pairs.sort();
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let s: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if s.is_empty() {
        String::new()
    } else {
        format!("?{}", s.join("&"))
    }
}

/// The container a request names, or the pod's only one (upstream `validateContainer`).
fn container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, StatusError> {
    let names: Vec<&str> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(StatusError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            let regular: Vec<&str> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            match regular.as_slice() {
                [one] => Ok(one.to_string()),
                _ => Err(StatusError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    regular.join(" ")
                ))),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    Exec,
    Attach,
    PortForward,
}

/// `pods/<name>/{log,exec,attach,portforward}` through the node's kubelet.
pub struct KubeletConnect {
    pub pods: Arc<Registry>,
    pub nodes: Arc<Registry>,
    pub kind: Kind,
    pub kubelet: Arc<KubeletClient>,
}

impl KubeletConnect {
    async fn kubelet(&self, pod: &Value, name: &str) -> Result<(String, u16), StatusError> {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        if node.is_empty() {
            return Err(StatusError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let n = self.nodes.get(None, node).await?;
        self.kubelet.endpoint(&n).ok_or_else(|| {
            StatusError::bad_request(format!("node {node} has no address to reach its kubelet"))
        })
    }
}

#[async_trait]
impl ConnectHandler for KubeletConnect {
    async fn connect(
        &self,
        req: Request<hyper::body::Incoming>,
        ns: Option<&str>,
        name: &str,
        info: &RequestInfo,
        query: &HashMap<String, String>,
    ) -> Result<Response<Body>, StatusError> {
        let gr = GroupResource::new("", "pods");
        let allowed = match self.kind {
            Kind::Log => info.verb == "get",
            _ => matches!(info.verb.as_str(), "get" | "create"),
        };
        if !allowed {
            return Err(StatusError::method_not_supported(&gr, &info.verb));
        }
        let pod = self.pods.get(ns, name).await?;
        let ns = ns.unwrap_or_default();
        let (path, skip): (String, &[&str]) = match self.kind {
            Kind::PortForward => (format!("/portForward/{ns}/{name}"), &[]),
            kind => {
                let c = container(&pod, name, query.get("container").map(String::as_str))?;
                if kind == Kind::Exec {
                    if !query.contains_key("command") {
                        return Err(StatusError::bad_request(
                            "you must specify at least 1 command",
                        ));
                    }
                    let on = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
                    if !on("stdin") && !on("stdout") && !on("stderr") {
                        return Err(StatusError::bad_request(
                            "you must specify at least one of stdin, stdout, stderr",
                        ));
                    }
                }
                let base = match kind {
                    Kind::Log => "containerLogs",
                    Kind::Exec => "exec",
                    _ => "attach",
                };
                (format!("/{base}/{ns}/{name}/{c}"), &["container"])
            }
        };
        let (host, port) = self.kubelet(&pod, name).await?;
        let query = match self.kind {
            // Repeated `command`s survive, and the stream flags take the kubelet's
            // names (input/output/error/tty = "1"), as upstream's streamParams.
            Kind::Exec | Kind::Attach => stream_query(req.uri().query().unwrap_or_default()),
            _ => query_string(query, skip),
        };
        let path_and_query = format!("{path}{query}");
        // WebSocket clients of a SPDY kubelet: translated (exec, attach) or tunneled
        // (port-forward), as upstream's apiserver does since v1.30/v1.31.
        let translated = component_base::proxy::Target {
            https: true,
            host: host.clone(),
            port,
            path_and_query: path_and_query.clone(),
            server_name: None,
        };
        let tls = self.kubelet.tls.clone();
        match self.kind {
            Kind::Exec | Kind::Attach if streamtranslator::wants_translation(&req) => {
                return streamtranslator::translate(req, translated, tls);
            }
            Kind::PortForward if streamtunnel::wants_tunnel(&req) => {
                return streamtunnel::tunnel(req, translated, tls).await;
            }
            _ => {}
        }
        let target = Target {
            https: true,
            host,
            port,
            path_and_query,
            tls: Some(tls),
        };
        forward(req, target).await
    }
}

/// The kubelet's query for exec/attach from the client's raw one.
fn stream_query(raw: &str) -> String {
    let mut out = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let on = v == "true" || v == "1";
        match k {
            "container" => {}
            "stdin" | "stdout" | "stderr" | "tty" => {
                if on {
                    let name = match k {
                        "stdin" => "input",
                        "stdout" => "output",
                        "stderr" => "error",
                        _ => "tty",
                    };
                    out.push(format!("{name}=1"));
                }
            }
            _ => out.push(pair.to_string()),
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("?{}", out.join("&"))
    }
}

/// `name`, `name:port` or `scheme:name:port` of a proxy URL.
fn split_name(name: &str) -> (Option<&str>, &str, Option<&str>) {
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        [n] => (None, n, None),
        [n, p] => (None, n, Some(p)),
        [s, n, p] => (Some(s), n, Some(p)),
        _ => (None, name, None),
    }
}

fn rest_path(info: &RequestInfo, query: &HashMap<String, String>) -> String {
    format!("/{}{}", info.parts.join("/"), query_string(query, &[]))
}

/// What a `proxy` subresource reaches.
pub enum ProxyTo {
    /// `nodes/<name>/proxy/...`: the node's kubelet.
    Node,
    /// `pods/<name>/proxy/...`: the pod's IP.
    Pod,
    /// `services/<name>/proxy/...`: one ready endpoint of the service.
    Service { endpoints: Arc<Registry> },
}

pub struct Proxy {
    pub registry: Arc<Registry>,
    pub to: ProxyTo,
    pub kubelet: Arc<KubeletClient>,
}

#[async_trait]
impl ConnectHandler for Proxy {
    async fn connect(
        &self,
        req: Request<hyper::body::Incoming>,
        ns: Option<&str>,
        name: &str,
        info: &RequestInfo,
        query: &HashMap<String, String>,
    ) -> Result<Response<Body>, StatusError> {
        let (scheme, object, port) = split_name(name);
        let obj = self.registry.get(ns, object).await?;
        let path = rest_path(info, query);
        let (https, host, port) =
            match &self.to {
                ProxyTo::Node => {
                    let (host, kubelet_port) = self.kubelet.endpoint(&obj).ok_or_else(|| {
                        StatusError::bad_request(format!("node {object} has no address"))
                    })?;
                    let port = port.and_then(|p| p.parse().ok()).unwrap_or(kubelet_port);
                    (scheme != Some("http"), host, port)
                }
                ProxyTo::Pod => {
                    let ip = obj["status"]["podIP"].as_str().unwrap_or_default();
                    if ip.is_empty() {
                        return Err(StatusError::bad_request(format!(
                            "address not allowed: pod {object} has no IP"
                        )));
                    }
                    // Without a port, the pod's first declared container port, else the
                    // scheme's default (upstream's pod `ResourceLocation`).
                    let port =
                        match port {
                            Some(p) => p.parse().map_err(|_| {
                                StatusError::bad_request(format!("invalid port {p}"))
                            })?,
                            None => first_container_port(&obj)
                                .unwrap_or(if scheme == Some("https") { 443 } else { 80 }),
                        };
                    (scheme == Some("https"), ip.to_string(), port)
                }
                ProxyTo::Service { endpoints } => {
                    let (ip, p) = service_backend(&obj, endpoints, ns, object, port).await?;
                    (scheme == Some("https"), ip, p)
                }
            };
        forward(
            req,
            Target {
                https,
                host,
                port,
                path_and_query: path,
                tls: matches!(self.to, ProxyTo::Node).then(|| self.kubelet.tls.clone()),
            },
        )
        .await
    }
}

/// The first port any container of the pod declares.
fn first_container_port(pod: &Value) -> Option<u16> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find_map(|c| c["ports"][0]["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// Upstream's service `ResourceLocation`: a port number names the service port of that
/// number; the endpoints' port of that name (unnamed for a one-port service) on a
/// subset with addresses, starting from a random subset and address so that repeated
/// requests spread over the backends.
async fn service_backend(
    svc: &Value,
    endpoints: &Registry,
    ns: Option<&str>,
    name: &str,
    port: Option<&str>,
) -> Result<(String, u16), StatusError> {
    let mut port_name = port.unwrap_or_default().to_string();
    if let Ok(number) = port_name.parse::<u64>() {
        let declared = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_u64() == Some(number))
            .ok_or_else(|| {
                StatusError::service_unavailable(format!(
                    "no service port {number} found for service \"{name}\""
                ))
            })?;
        port_name = declared["name"].as_str().unwrap_or_default().to_string();
    }
    let none = || {
        StatusError::service_unavailable(format!("no endpoints available for service \"{name}\""))
    };
    let eps = endpoints.get(ns, name).await.map_err(|_| none())?;
    let subsets = eps["subsets"].as_array().cloned().unwrap_or_default();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0);
    for i in 0..subsets.len() {
        let subset = &subsets[(seed + i) % subsets.len()];
        let addresses = subset["addresses"].as_array().cloned().unwrap_or_default();
        if addresses.is_empty() {
            continue;
        }
        let found = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or_default() == port_name);
        if let Some(p) = found.and_then(|p| p["port"].as_u64()) {
            let addr = &addresses[(seed / 7) % addresses.len()];
            let ip = addr["ip"].as_str().unwrap_or_default().to_string();
            return Ok((ip, u16::try_from(p).map_err(|_| none())?));
        }
    }
    Err(none())
}
