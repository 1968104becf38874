//! OpenAPI v3 documents generated from the installed resources (upstream serves
//! `/openapi/v3` and one document per group-version). These carry every operation with
//! its `x-kubernetes-group-version-kind`, `x-kubernetes-action` and query parameters, which
//! is what kubectl reads to use server-side field validation. Schemas come later.

use super::handlers::ApiServer;
use serde_json::{Map, Value, json};

fn param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn op(action: &str, gvk: &Value, params: Vec<Value>) -> Value {
    json!({
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    })
}

/// A small stable hash (FNV-1a) so clients can cache documents by URL.
fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

impl ApiServer {
    fn gv_paths(&self) -> Vec<(String, String, String)> {
        let mut gvs: Vec<(String, String, String)> = self
            .resources
            .keys()
            .map(|(g, v, _)| {
                let p = if g.is_empty() {
                    format!("api/{v}")
                } else {
                    format!("apis/{g}/{v}")
                };
                (p, g.clone(), v.clone())
            })
            .collect();
        gvs.sort();
        gvs.dedup();
        gvs
    }

    /// `/openapi/v3`: the list of group-version documents.
    pub fn openapi_v3_root(&self) -> Value {
        let mut paths = Map::new();
        for (p, g, v) in self.gv_paths() {
            let doc = self
                .openapi_v3_gv(&g, &v)
                .map(|d| d.to_string())
                .unwrap_or_default();
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", fnv(&doc))}),
            );
        }
        json!({"paths": paths})
    }

    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
    pub fn openapi_v3_gv(&self, group: &str, version: &str) -> Option<Value> {
        let mut paths = Map::new();
        let mut keys: Vec<_> = self
            .resources
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .collect();
        if keys.is_empty() {
            return None;
        }
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let write_params = || {
            vec![
                param("dryRun", "string"),
                param("fieldManager", "string"),
                param("fieldValidation", "string"),
            ]
        };
        let list_params = || {
            [
                "allowWatchBookmarks",
                "continue",
                "fieldSelector",
                "labelSelector",
                "limit",
                "resourceVersion",
                "resourceVersionMatch",
                "sendInitialEvents",
                "timeoutSeconds",
                "watch",
            ]
            .iter()
            .map(|n| {
                param(
                    n,
                    if matches!(*n, "limit" | "timeoutSeconds") {
                        "integer"
                    } else {
                        "string"
                    },
                )
            })
            .collect::<Vec<_>>()
        };
        for ((_, _, resource), res) in keys {
            let ri = res.info();
            let gvk =
                json!({"group": ri.gvk.group, "version": ri.gvk.version, "kind": ri.gvk.kind});
            let scope = if ri.namespaced {
                format!("{base}/namespaces/{{namespace}}/{resource}")
            } else {
                format!("{base}/{resource}")
            };
            let mut coll_params = list_params();
            let mut item_params = vec![path_param("name")];
            if ri.namespaced {
                coll_params.push(path_param("namespace"));
                item_params.push(path_param("namespace"));
            }
            paths.insert(
                scope.clone(),
                json!({
                    "get": op("list", &gvk, coll_params.clone()),
                    "post": op("post", &gvk, write_params()),
                    "delete": op("deletecollection", &gvk, coll_params),
                }),
            );
            let mut patch_params = write_params();
            patch_params.push(param("force", "boolean"));
            paths.insert(
                format!("{scope}/{{name}}"),
                json!({
                    "parameters": item_params,
                    "get": op("get", &gvk, vec![]),
                    "put": op("put", &gvk, write_params()),
                    "patch": op("patch", &gvk, patch_params.clone()),
                    "delete": op("delete", &gvk, vec![param("dryRun", "string"), param("gracePeriodSeconds", "integer"), param("propagationPolicy", "string")]),
                }),
            );
            for sub in &ri.subresources {
                paths.insert(
                    format!("{scope}/{{name}}/{sub}"),
                    json!({
                        "parameters": item_params,
                        "get": op("get", &gvk, vec![]),
                        "put": op("put", &gvk, write_params()),
                        "patch": op("patch", &gvk, patch_params.clone()),
                    }),
                );
            }
        }
        Some(json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.35.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }))
    }
}
