//! OpenAPI documents generated from the installed resources: `/openapi/v3` (the index),
//! one v3 document per group-version, and the single `/openapi/v2` (Swagger 2.0) document.
//! Operations carry `x-kubernetes-group-version-kind` / `x-kubernetes-action` and their
//! query parameters (kubectl reads them to pick server-side field validation); schemas
//! come from the resources' types (`kubectl explain`, client-side validation), with
//! `$ref` + description written as `allOf` the way upstream's generator does.

use super::handlers::{ApiResource, ApiServer};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A type's schema and every schema it references, by upstream's definition names
/// (`io.k8s.api.apps.v1.Deployment`).
#[derive(Clone, Debug, Default)]
pub struct SchemaSet {
    pub root: String,
    pub definitions: Map<String, Value>,
}

/// A rendered document and its hash.
pub type Doc = (Vec<u8>, String);

/// Rendered documents, rebuilt only when the set of resources changes.
#[derive(Default)]
pub struct OpenApiCache {
    /// The documents, and the generation of the resource set they were built from.
    docs: Mutex<(u64, HashMap<String, Arc<Doc>>)>,
}

impl OpenApiCache {
    pub fn invalidate(&self) {
        let mut docs = self.docs.lock().unwrap();
        docs.0 += 1;
        docs.1.clear();
    }

    fn get_raw(&self, key: &str, build: impl FnOnce() -> Vec<u8>) -> Arc<Doc> {
        self.cached(key, || Some(build()))
            .expect("the builder always returns a document")
    }

    fn get_or(&self, key: &str, build: impl FnOnce() -> Option<Value>) -> Option<Arc<Doc>> {
        self.cached(key, || {
            build().map(|v| serde_json::to_vec(&v).unwrap_or_default())
        })
    }

    /// A document by key, built (outside the lock) when missing. The generation is read
    /// before the build, so a document built from an older resource set is not kept.
    fn cached(&self, key: &str, build: impl FnOnce() -> Option<Vec<u8>>) -> Option<Arc<Doc>> {
        let generation = {
            let docs = self.docs.lock().unwrap();
            if let Some(d) = docs.1.get(key) {
                return Some(d.clone());
            }
            docs.0
        };
        let bytes = build()?;
        let hash = fnv(&bytes);
        let doc = Arc::new((bytes, hash));
        // Built from a resource set that changed meanwhile: served once, never cached
        // (a CRD served or unserved during the build would otherwise stay stale).
        let mut docs = self.docs.lock().unwrap();
        if docs.0 == generation {
            docs.1.insert(key.to_string(), doc.clone());
        }
        Some(doc)
    }
}

/// A small stable hash (FNV-1a) so clients can cache documents by URL.
fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

const LIST_PARAMS: [&str; 10] = [
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
];

fn list_params() -> Vec<Value> {
    LIST_PARAMS
        .iter()
        .map(|n| {
            let t = if matches!(*n, "limit" | "timeoutSeconds") {
                "integer"
            } else {
                "string"
            };
            param(n, t)
        })
        .collect()
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "string"),
        param("fieldManager", "string"),
        param("fieldValidation", "string"),
    ]
}

const REF_V3: &str = "#/components/schemas/";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_V3}{name}")})
}

/// Upstream writes a reference that carries its own description (or default) as
/// `allOf: [{$ref}]` beside those keys; clients walk `allOf`.
fn refs_as_all_of(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // (A `properties` map may have a field named `$ref`; that is no reference.)
            if m.len() > 1
                && m.get("$ref").is_some_and(Value::is_string)
                && let Some(r) = m.remove("$ref")
            {
                m.insert("allOf".into(), json!([{"$ref": r}]));
            }
            m.values_mut().for_each(refs_as_all_of);
        }
        Value::Array(a) => a.iter_mut().for_each(refs_as_all_of),
        _ => {}
    }
}

fn op(action: &str, gvk: &Value, params: Vec<Value>, body: Option<&str>, out: &str) -> Value {
    let mut o = json!({
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref(out)}}}},
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"content": {"*/*": {"schema": schema_ref(b)}}, "required": true});
    }
    o
}

/// The paths and schemas one resource contributes to its group-version document.
fn add_resource(
    base: &str,
    resource: &str,
    res: &ApiResource,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    let ri = res.info();
    let gvk = json!({"group": ri.gvk.group, "version": ri.gvk.version, "kind": ri.gvk.kind});
    let set = res.openapi_schemas();
    let root = match &set {
        Some(s) => {
            for (k, v) in &s.definitions {
                schemas.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if let Some(r) = schemas.get_mut(&s.root) {
                r["x-kubernetes-group-version-kind"] = json!([gvk]);
            }
            s.root.clone()
        }
        None => {
            // Without a typed schema the object is still described as an open object.
            let name = format!("{}.{}.{}", ri.gvk.group, ri.gvk.version, ri.gvk.kind);
            schemas.insert(name.clone(), json!({"type": "object", "x-kubernetes-group-version-kind": [gvk], "x-kubernetes-preserve-unknown-fields": true}));
            name
        }
    };
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
    let mut patch_params = write_params();
    patch_params.push(param("force", "boolean"));
    let mut collection = json!({
        "get": op("list", &gvk, coll_params.clone(), None, &root),
        "post": op("post", &gvk, write_params(), Some(&root), &root),
    });
    if ri.delete_collection {
        collection["delete"] = op("deletecollection", &gvk, coll_params, None, &root);
    }
    paths.insert(scope.clone(), collection);
    paths.insert(
        format!("{scope}/{{name}}"),
        json!({
            "parameters": item_params,
            "get": op("get", &gvk, vec![], None, &root),
            "put": op("put", &gvk, write_params(), Some(&root), &root),
            "patch": op("patch", &gvk, patch_params.clone(), None, &root),
            "delete": op("delete", &gvk, vec![param("dryRun", "string"), param("gracePeriodSeconds", "integer"), param("propagationPolicy", "string")], None, &root),
        }),
    );
    for sub in &ri.subresources {
        paths.insert(
            format!("{scope}/{{name}}/{sub}"),
            json!({
                "parameters": item_params,
                "get": op("get", &gvk, vec![], None, &root),
                "put": op("put", &gvk, write_params(), Some(&root), &root),
                "patch": op("patch", &gvk, patch_params.clone(), None, &root),
            }),
        );
    }
}

fn gv_base(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Swagger 2.0 from v3 pieces: same schemas under `definitions`, body parameters instead
/// of request bodies.
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                match (k.as_str(), val) {
                    ("$ref", Value::String(s)) => {
                        out.insert(k.clone(), json!(s.replace(REF_V3, "#/definitions/")));
                    }
                    // Swagger 2.0 readers take `$ref` beside a description, not `allOf`.
                    ("allOf", Value::Array(a))
                        if a.len() == 1
                            && a[0]["$ref"].is_string()
                            && a[0].as_object().is_some_and(|o| o.len() == 1) =>
                    {
                        let r = a[0]["$ref"].as_str().unwrap_or_default();
                        out.insert("$ref".into(), json!(r.replace(REF_V3, "#/definitions/")));
                    }
                    ("requestBody", b) => {
                        let schema = to_v2(&b["content"]["*/*"]["schema"]);
                        let mut params = out
                            .remove("parameters")
                            .or_else(|| m.get("parameters").map(to_v2))
                            .unwrap_or(json!([]));
                        if let Some(a) = params.as_array_mut() {
                            a.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
                        }
                        out.insert("parameters".into(), params);
                    }
                    ("responses", r) => {
                        let schema = to_v2(&r["200"]["content"]["application/json"]["schema"]);
                        out.insert(
                            k.clone(),
                            json!({"200": {"description": "OK", "schema": schema}}),
                        );
                    }
                    ("parameters", _) if out.contains_key("parameters") => {}
                    ("schema", s) if m.get("in").is_some_and(|i| i != "body") => {
                        // v2 parameters carry their type inline.
                        for (sk, sv) in s.as_object().into_iter().flatten() {
                            out.insert(sk.clone(), sv.clone());
                        }
                    }
                    _ => {
                        out.insert(k.clone(), to_v2(val));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

impl ApiServer {
    fn group_versions(&self) -> Vec<(String, String)> {
        let mut gvs: Vec<(String, String)> = self
            .resources()
            .keys()
            .map(|(g, v, _)| (g.clone(), v.clone()))
            .collect();
        gvs.sort();
        gvs.dedup();
        gvs
    }

    /// Paths and schemas of one group-version (None if it is not served).
    fn gv_parts(
        &self,
        group: &str,
        version: &str,
    ) -> Option<(Map<String, Value>, Map<String, Value>)> {
        let resources = self.resources();
        let mut keys: Vec<_> = resources
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .collect();
        if keys.is_empty() {
            return None;
        }
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let base = gv_base(group, version);
        let mut paths = Map::new();
        let mut schemas = Map::new();
        for ((_, _, resource), res) in keys {
            add_resource(&base, resource, res, &mut paths, &mut schemas);
        }
        let mut schemas = Value::Object(schemas);
        refs_as_all_of(&mut schemas);
        let Value::Object(schemas) = schemas else {
            unreachable!()
        };
        Some((paths, schemas))
    }

    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: (JSON, hash).
    pub fn openapi_v3_gv(&self, group: &str, version: &str) -> Option<Arc<Doc>> {
        self.openapi.get_or(&gv_base(group, version), || {
            let (paths, schemas) = self.gv_parts(group, version)?;
            Some(json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.35.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            }))
        })
    }

    /// `/openapi/v3`: every group-version document with its hash.
    pub fn openapi_v3_root(&self) -> Value {
        let mut paths = Map::new();
        for (g, v) in self.group_versions() {
            let p = gv_base(&g, &v);
            if let Some(doc) = self.openapi_v3_gv(&g, &v) {
                let p = p.trim_start_matches('/').to_string();
                paths.insert(
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", doc.1)}),
                );
            }
        }
        json!({"paths": paths})
    }

    /// `/openapi/v2` in gnostic's protobuf form.
    pub fn openapi_v2_protobuf(&self) -> Arc<Doc> {
        self.openapi.get_raw("v2.pb", || {
            let json = self.openapi_v2();
            let v: Value = serde_json::from_slice(&json.0).unwrap_or_default();
            super::openapi_pb::document(&v)
        })
    }

    /// `/openapi/v2`: every group-version in one Swagger 2.0 document.
    pub fn openapi_v2(&self) -> Arc<Doc> {
        self.openapi
            .get_or("v2", || {
                let mut paths = Map::new();
                let mut defs = Map::new();
                for (g, v) in self.group_versions() {
                    if let Some((p, s)) = self.gv_parts(&g, &v) {
                        paths.extend(p);
                        for (k, d) in s {
                            defs.entry(k).or_insert(d);
                        }
                    }
                }
                Some(json!({
                    "swagger": "2.0",
                    "info": {"title": "Kubernetes", "version": "v1.35.0"},
                    "paths": to_v2(&Value::Object(paths)),
                    "definitions": to_v2(&Value::Object(defs)),
                }))
            })
            .expect("v2 document always builds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_built_across_an_invalidation_is_not_kept() {
        let cache = OpenApiCache::default();
        let first = cache.get_raw("k", || {
            cache.invalidate();
            b"old".to_vec()
        });
        assert_eq!(first.0, b"old");
        assert_eq!(cache.get_raw("k", || b"new".to_vec()).0, b"new");
        assert_eq!(cache.get_raw("k", || b"other".to_vec()).0, b"new");
    }

    #[test]
    fn refs_with_siblings_become_all_of() {
        let mut v =
            json!({"properties": {"a": {"$ref": "#/x", "description": "d"}, "b": {"$ref": "#/y"}}});
        refs_as_all_of(&mut v);
        assert_eq!(
            v["properties"]["a"],
            json!({"allOf": [{"$ref": "#/x"}], "description": "d"})
        );
        assert_eq!(v["properties"]["b"], json!({"$ref": "#/y"}));
    }

    #[test]
    fn v2_moves_bodies_into_parameters() {
        let op = op("post", &json!({}), write_params(), Some("T"), "T");
        let v2 = to_v2(&op);
        let params = v2["parameters"].as_array().unwrap();
        assert_eq!(params.last().unwrap()["in"], "body");
        assert_eq!(params.last().unwrap()["schema"]["$ref"], "#/definitions/T");
        assert_eq!(params[0]["type"], "string");
        assert_eq!(v2["responses"]["200"]["schema"]["$ref"], "#/definitions/T");
        assert!(v2.get("requestBody").is_none());
    }
}
