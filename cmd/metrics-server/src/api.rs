//! The `metrics.k8s.io/v1beta1` API (upstream `metrics-server/pkg/api`): NodeMetrics and
//! PodMetrics, listed (with `labelSelector`) and got by name, computed from what the
//! scraper stored; discovery and an OpenAPI v3 document for the group version.

use crate::storage::{PodKey, Storage, Usage, cpu_quantity, memory_quantity, window};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

#[derive(Default)]
pub struct State {
    pub storage: Storage,
    /// Node labels by name.
    pub nodes: BTreeMap<String, BTreeMap<String, String>>,
    /// Pod labels by (namespace, name).
    pub pods: BTreeMap<PodKey, BTreeMap<String, String>>,
}

pub struct MetricsApi {
    pub state: Arc<RwLock<State>>,
}

fn json_response(code: u16, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn status(code: u16, reason: &str, message: String, details: Value) -> Response<Full<Bytes>> {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}),
    )
}

fn not_found(kind: &str, name: &str) -> Response<Full<Bytes>> {
    status(
        404,
        "NotFound",
        format!("{kind}.metrics.k8s.io {name:?} not found"),
        json!({"name": name, "group": "metrics.k8s.io", "kind": kind}),
    )
}

fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn usage(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.cpu_nanocores), "memory": memory_quantity(u.memory_bytes)})
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl State {
    fn node_metrics(&self, name: &str) -> Option<Value> {
        let u = self.storage.node(name)?;
        let labels = self.nodes.get(name)?;
        Some(json!({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": name, "creationTimestamp": now(), "labels": labels},
            "timestamp": timestamp(u.timestamp_ms), "window": window(u.window_ms), "usage": usage(&u)}))
    }

    fn pod_metrics(&self, key: &PodKey) -> Option<Value> {
        let cs = self.storage.pod(key)?;
        let labels = self.pods.get(key)?;
        let (ts, win) = cs
            .iter()
            .map(|(_, u)| (u.timestamp_ms, u.window_ms))
            .max()
            .unwrap_or_default();
        let containers: Vec<Value> = cs
            .iter()
            .map(|(c, u)| json!({"name": c, "usage": usage(u)}))
            .collect();
        Some(json!({"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": key.1, "namespace": key.0, "creationTimestamp": now(), "labels": labels},
            "timestamp": timestamp(ts), "window": window(win), "containers": containers}))
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
}

fn resource_list() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}]})
}

#[async_trait::async_trait]
impl component_base::serving::ApiHandler for MetricsApi {
    async fn serve(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        self.answer(req.method().as_str(), &path, &query)
    }
}

impl MetricsApi {
    pub fn answer(&self, method: &str, path: &str, query: &str) -> Response<Full<Bytes>> {
        if method != "GET" {
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource".into(),
                json!({}),
            );
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let selector = match apimachinery::labels::Selector::parse(
            &query_param(query, "labelSelector").unwrap_or_default(),
        ) {
            Ok(s) => s,
            Err(e) => {
                return status(
                    400,
                    "BadRequest",
                    format!("unable to parse requirement: {e}"),
                    json!({}),
                );
            }
        };
        if query_param(query, "fieldSelector").is_some_and(|f| !f.is_empty()) {
            return status(
                400,
                "BadRequest",
                "field selectors are not supported by metrics.k8s.io".into(),
                json!({}),
            );
        }
        let state = self.state.read().unwrap();
        match segs.as_slice() {
            ["apis", "metrics.k8s.io", "v1beta1"] => json_response(200, &resource_list()),
            ["apis", "metrics.k8s.io"] => json_response(
                200,
                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": "metrics.k8s.io",
                    "versions": [{"groupVersion": GROUP_VERSION, "version": "v1beta1"}],
                    "preferredVersion": {"groupVersion": GROUP_VERSION, "version": "v1beta1"}}),
            ),
            ["openapi", "v3"] => json_response(
                200,
                &json!({"paths": {"apis/metrics.k8s.io/v1beta1": {"serverRelativeURL": "/openapi/v3/apis/metrics.k8s.io/v1beta1"}}}),
            ),
            ["openapi", "v3", "apis", "metrics.k8s.io", "v1beta1"] => {
                json_response(200, &openapi())
            }
            ["apis", "metrics.k8s.io", "v1beta1", "nodes"] => {
                let items = state
                    .nodes
                    .iter()
                    .filter(|(_, l)| selector.matches(l))
                    .filter_map(|(n, _)| state.node_metrics(n))
                    .collect();
                json_response(200, &list("NodeMetrics", items))
            }
            ["apis", "metrics.k8s.io", "v1beta1", "nodes", name] => {
                match state.node_metrics(name) {
                    Some(m) => json_response(200, &m),
                    None => not_found("nodemetrics", name),
                }
            }
            ["apis", "metrics.k8s.io", "v1beta1", "pods"] => self.pods(&state, None, &selector),
            [
                "apis",
                "metrics.k8s.io",
                "v1beta1",
                "namespaces",
                ns,
                "pods",
            ] => self.pods(&state, Some(ns), &selector),
            [
                "apis",
                "metrics.k8s.io",
                "v1beta1",
                "namespaces",
                ns,
                "pods",
                name,
            ] => match state.pod_metrics(&(ns.to_string(), name.to_string())) {
                Some(m) => json_response(200, &m),
                None => not_found("podmetrics", name),
            },
            _ => status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                json!({}),
            ),
        }
    }

    fn pods(
        &self,
        state: &State,
        ns: Option<&str>,
        selector: &apimachinery::labels::Selector,
    ) -> Response<Full<Bytes>> {
        let items = state
            .pods
            .iter()
            .filter(|((pns, _), l)| ns.is_none_or(|n| n == pns) && selector.matches(l))
            .filter_map(|(k, _)| state.pod_metrics(k))
            .collect();
        json_response(200, &list("PodMetrics", items))
    }
}

/// The group version's OpenAPI v3 document (its two kinds).
fn openapi() -> Value {
    let usage = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let meta =
        json!({"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"});
    json!({"openapi": "3.0.0", "info": {"title": "metrics-server", "version": "v1beta1"}, "paths": {},
        "components": {"schemas": {
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"type": "object"},
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                "timestamp": {"type": "string", "format": "date-time"}, "window": {"type": "string"}, "usage": usage},
                "x-kubernetes-group-version-kind": [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "NodeMetrics"}]},
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                "timestamp": {"type": "string", "format": "date-time"}, "window": {"type": "string"},
                "containers": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "usage": usage}}}},
                "x-kubernetes-group-version-kind": [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "PodMetrics"}]}}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Batch, Sample};
    use http_body_util::BodyExt;

    fn body(r: Response<Full<Bytes>>) -> (u16, Value) {
        let code = r.status().as_u16();
        let b = futures::executor::block_on(r.into_body().collect())
            .unwrap()
            .to_bytes();
        (code, serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn serves_node_and_pod_metrics() {
        let mut st = State::default();
        st.nodes
            .insert("n1".into(), [("zone".to_string(), "a".to_string())].into());
        let key = ("default".to_string(), "web".to_string());
        st.pods
            .insert(key.clone(), [("app".to_string(), "web".to_string())].into());
        for (ts, cpu) in [(1_000, 1.0), (16_000, 2.5)] {
            let s = Sample {
                timestamp_ms: ts,
                cpu_seconds: cpu,
                memory_bytes: 8 << 20,
            };
            st.storage.store(
                "n1",
                Batch {
                    node: Some(s),
                    containers: vec![("default".into(), "web".into(), "app".into(), s)],
                },
                std::slice::from_ref(&key),
            );
        }
        let api = MetricsApi {
            state: Arc::new(RwLock::new(st)),
        };
        let (code, v) = body(api.answer("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1", ""));
        assert_eq!(code, 200);
        assert_eq!(v["usage"], json!({"cpu": "100m", "memory": "8Mi"}));
        assert_eq!(v["window"], "15s");
        let (_, v) = body(api.answer(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "labelSelector=app%3Dweb",
        ));
        assert_eq!(v["items"][0]["containers"][0]["usage"]["cpu"], "100m");
        let (_, v) = body(api.answer(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/pods",
            "labelSelector=app%3Ddb",
        ));
        assert_eq!(v["items"], json!([]));
        let (code, v) = body(api.answer("GET", "/apis/metrics.k8s.io/v1beta1/nodes/gone", ""));
        assert_eq!(
            (code, v["message"].as_str().unwrap()),
            (404, "nodemetrics.metrics.k8s.io \"gone\" not found")
        );
    }
}
