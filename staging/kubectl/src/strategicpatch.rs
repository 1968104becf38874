//! Client-side apply's three-way strategic merge patch for built-in types (upstream
//! `apimachinery/pkg/util/strategicpatch/patch.go` `CreateThreeWayMergePatch`, with the
//! patch metadata read from the server's OpenAPI v3 as kubectl's `PatchMetaFromOpenAPIV3`):
//! changes and additions from the live object to what is applied now, deletions from
//! what was last applied; keyed lists patched item by item with `$patch: delete` and
//! `$setElementOrder`, merged primitive lists with `$deleteFromPrimitiveList`.

use serde_json::{Map, Value, json};

/// A schema node within an OpenAPI v3 document.
#[derive(Clone, Copy)]
pub struct Schema<'a> {
    schemas: Option<&'a Map<String, Value>>,
    node: Option<&'a Value>,
}

/// How a list patches.
#[derive(Debug, PartialEq)]
enum ListKind {
    Keyed(String),
    Primitive,
    Replace,
}

impl<'a> Schema<'a> {
    /// The schema of a built-in kind (one of `k8s.io/api`'s types, which kubectl patches
    /// strategically) in `doc`, an OpenAPI v3 document; `None` for custom resources and
    /// other kinds, which get JSON merge patches as in upstream kubectl.
    pub fn for_builtin_kind(
        doc: &'a Value,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<Schema<'a>> {
        Self::for_kind(doc, group, version, kind)
            .filter(|(name, _)| name.starts_with("io.k8s.api."))
            .map(|(_, s)| s)
    }

    /// The schema (and its definition's name) of `group/version, Kind` in `doc`.
    pub fn for_kind(
        doc: &'a Value,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<(&'a str, Schema<'a>)> {
        let schemas = doc["components"]["schemas"].as_object()?;
        let (name, node) = schemas.iter().find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
        })?;
        Some((
            name.as_str(),
            Schema {
                schemas: Some(schemas),
                node: Some(node),
            },
        ))
    }

    /// No schema: everything patches as a JSON merge patch would (lists replaced).
    pub fn none() -> Schema<'static> {
        Schema {
            schemas: None,
            node: None,
        }
    }

    fn resolved(&self) -> Option<&'a Value> {
        let mut n = self.node?;
        for _ in 0..8 {
            let r = n
                .get("$ref")
                .or_else(|| n["allOf"].get(0).and_then(|a| a.get("$ref")))
                .and_then(Value::as_str);
            let Some(r) = r else { return Some(n) };
            n = self.schemas?.get(r.rsplit('/').next()?)?;
        }
        Some(n)
    }

    fn child(&self, field: &str) -> Schema<'a> {
        let node = self.resolved().and_then(|r| {
            r.get("properties")
                .and_then(|p| p.get(field))
                .or_else(|| r.get("additionalProperties").filter(|a| a.is_object()))
        });
        Schema {
            schemas: self.schemas,
            node,
        }
    }

    fn item(&self) -> Schema<'a> {
        Schema {
            schemas: self.schemas,
            node: self.resolved().and_then(|r| r.get("items")),
        }
    }

    /// The list semantics of the field this node describes (the extensions sit on the
    /// property itself).
    fn list_kind(&self) -> ListKind {
        let ext = |k: &str| self.node.and_then(|n| n.get(k)).and_then(Value::as_str);
        let merge =
            ext("x-kubernetes-patch-strategy").is_some_and(|s| s.split(',').any(|s| s == "merge"));
        match (merge, ext("x-kubernetes-patch-merge-key")) {
            (true, Some(k)) => ListKind::Keyed(k.to_string()),
            (true, None) => ListKind::Primitive,
            _ => ListKind::Replace,
        }
    }
}

#[derive(Clone, Copy)]
struct Opts {
    ignore_deletions: bool,
    ignore_changes_and_additions: bool,
}

/// The patch turning `current` into `modified`, removing what `original` had and
/// `modified` no longer has; `{}` when nothing changes.
pub fn three_way(original: &Value, modified: &Value, current: &Value, schema: Schema) -> Value {
    let empty = Map::new();
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_else(|| empty.clone());
    let delta = diff_maps(
        &obj(current),
        &obj(modified),
        schema,
        Opts {
            ignore_deletions: true,
            ignore_changes_and_additions: false,
        },
    );
    let deletions = diff_maps(
        &obj(original),
        &obj(modified),
        schema,
        Opts {
            ignore_deletions: false,
            ignore_changes_and_additions: true,
        },
    );
    Value::Object(merge_patches(deletions, delta, schema))
}

fn diff_maps(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    schema: Schema,
    o: Opts,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (k, mv) in modified {
        let Some(ov) = original.get(k) else {
            if !o.ignore_changes_and_additions {
                patch.insert(k.clone(), mv.clone());
            }
            continue;
        };
        let field = schema.child(k);
        match (ov, mv) {
            (Value::Object(a), Value::Object(b)) => {
                let sub = diff_maps(a, b, field, o);
                if !sub.is_empty() {
                    patch.insert(k.clone(), Value::Object(sub));
                }
            }
            (Value::Array(a), Value::Array(b)) => diff_lists(&mut patch, k, a, b, field, o),
            _ if ov == mv => {}
            _ => {
                if !o.ignore_changes_and_additions {
                    patch.insert(k.clone(), mv.clone());
                }
            }
        }
    }
    if !o.ignore_deletions {
        for k in original.keys() {
            if !modified.contains_key(k) {
                patch.insert(k.clone(), Value::Null);
            }
        }
    }
    patch
}

fn key_of<'v>(item: &'v Value, key: &str) -> Option<&'v Value> {
    item.get(key)
}

fn diff_lists(
    patch: &mut Map<String, Value>,
    k: &str,
    original: &[Value],
    modified: &[Value],
    field: Schema,
    o: Opts,
) {
    let all_maps = original.iter().chain(modified).all(Value::is_object);
    match field.list_kind() {
        ListKind::Keyed(key) if all_maps => {
            let item_schema = field.item();
            let mut items = Vec::new();
            for m in modified {
                let mk = key_of(m, &key);
                match original
                    .iter()
                    .find(|x| key_of(x, &key) == mk && mk.is_some())
                {
                    Some(orig) => {
                        let (Some(a), Some(b)) = (orig.as_object(), m.as_object()) else {
                            continue;
                        };
                        let mut sub = diff_maps(a, b, item_schema, o);
                        if !sub.is_empty() {
                            sub.insert(key.clone(), mk.cloned().unwrap_or(Value::Null));
                            items.push(Value::Object(sub));
                        }
                    }
                    None if !o.ignore_changes_and_additions => items.push(m.clone()),
                    None => {}
                }
            }
            let changed = !items.is_empty();
            if !o.ignore_deletions {
                for orig in original {
                    let ok = key_of(orig, &key);
                    if ok.is_some() && !modified.iter().any(|m| key_of(m, &key) == ok) {
                        items.push(json!({key.as_str(): ok.cloned().unwrap_or(Value::Null), "$patch": "delete"}));
                    }
                }
            }
            let order_same = {
                let keys = |l: &[Value]| {
                    l.iter()
                        .map(|i| key_of(i, &key).cloned())
                        .collect::<Vec<_>>()
                };
                let (a, b) = (keys(original), keys(modified));
                // Order within the items both have.
                let common_a: Vec<_> = a.iter().filter(|x| b.contains(x)).collect();
                let common_b: Vec<_> = b.iter().filter(|x| a.contains(x)).collect();
                common_a == common_b
            };
            let set_order = (!o.ignore_changes_and_additions && (changed || !order_same))
                || (!o.ignore_deletions && !items.is_empty());
            if !items.is_empty() {
                patch.insert(k.to_string(), Value::Array(items));
            }
            if set_order {
                let order: Vec<Value> = modified
                    .iter()
                    .map(|m| json!({key.as_str(): key_of(m, &key).cloned().unwrap_or(Value::Null)}))
                    .collect();
                patch.insert(format!("$setElementOrder/{k}"), Value::Array(order));
            }
        }
        ListKind::Primitive
            if !all_maps || original.iter().chain(modified).all(|v| !v.is_object()) =>
        {
            let added: Vec<Value> = modified
                .iter()
                .filter(|m| !original.contains(m))
                .cloned()
                .collect();
            let deleted: Vec<Value> = original
                .iter()
                .filter(|x| !modified.contains(x))
                .cloned()
                .collect();
            if !o.ignore_changes_and_additions && !added.is_empty() {
                patch.insert(k.to_string(), Value::Array(added));
            }
            if !o.ignore_deletions && !deleted.is_empty() {
                patch.insert(
                    format!("$deleteFromPrimitiveList/{k}"),
                    Value::Array(deleted),
                );
            }
            let set_order = (!o.ignore_deletions
                && patch.contains_key(&format!("$deleteFromPrimitiveList/{k}")))
                || (!o.ignore_changes_and_additions && original != modified);
            if set_order {
                patch.insert(
                    format!("$setElementOrder/{k}"),
                    Value::Array(modified.to_vec()),
                );
            }
        }
        _ => {
            if original != modified && !o.ignore_changes_and_additions {
                patch.insert(k.to_string(), Value::Array(modified.to_vec()));
            }
        }
    }
}

/// Two patches into one (the deletions first, the changes over them).
fn merge_patches(
    mut base: Map<String, Value>,
    add: Map<String, Value>,
    schema: Schema,
) -> Map<String, Value> {
    for (k, v) in add {
        let field = schema.child(&k);
        let merged = match (base.remove(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => Value::Object(merge_patches(a, b, field)),
            (Some(Value::Array(a)), Value::Array(b)) => match field.list_kind() {
                ListKind::Keyed(key) => {
                    let mut out = a;
                    for item in b {
                        let ik = item.get(&key).cloned();
                        match out
                            .iter_mut()
                            .find(|x| x.get(&key).cloned() == ik && ik.is_some())
                        {
                            Some(existing) => {
                                if let (Some(e), Value::Object(n)) =
                                    (existing.as_object().cloned(), item)
                                {
                                    *existing = Value::Object(merge_patches(e, n, field.item()));
                                }
                            }
                            None => out.push(item),
                        }
                    }
                    Value::Array(out)
                }
                _ => Value::Array(b),
            },
            (_, v) => v,
        };
        base.insert(k, merged);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "io.k8s.api.apps.v1.Deployment": {"x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
                "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]}}},
            "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {"template": {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}}},
            "io.k8s.api.core.v1.PodTemplateSpec": {"properties": {"spec": {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}}},
            "io.k8s.api.core.v1.PodSpec": {"properties": {"containers": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"},
                "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}}},
            "io.k8s.api.core.v1.Container": {"properties": {
                "env": {"type": "array", "items": {"type": "object"}, "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "args": {"type": "array", "items": {"type": "string"}}}},
            "io.k8s.api.core.v1.ObjectMeta": {"properties": {"finalizers": {"type": "array", "x-kubernetes-patch-strategy": "merge"}}}
        }}})
    }

    #[test]
    fn keyed_lists_keep_what_others_added_and_drop_what_we_stopped_applying() {
        let d = doc();
        let s = Schema::for_builtin_kind(&d, "apps", "v1", "Deployment").unwrap();
        let c = |env: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1", "env": env}]}}}});
        let original = c(json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
        let modified = c(json!([{"name": "A", "value": "10"}]));
        // Someone else added C with `kubectl set env`; it is kept.
        let current = c(
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]),
        );
        let patch = three_way(&original, &modified, &current, s);
        assert_eq!(
            patch,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"name": "app",
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"name": "B", "$patch": "delete"}, {"name": "A", "value": "10"}]}]}}}})
        );
        assert_eq!(three_way(&modified, &modified, &modified, s), json!({}));
    }

    #[test]
    fn unkeyed_lists_and_fields_replace_and_delete() {
        let d = doc();
        let s = Schema::for_builtin_kind(&d, "apps", "v1", "Deployment").unwrap();
        let original =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let modified = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3}});
        let current = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}, "spec": {"replicas": 2, "paused": false}});
        assert_eq!(
            three_way(&original, &modified, &current, s),
            json!({"metadata": {"labels": {"b": null}}, "spec": {"replicas": 3}})
        );
        // Without a schema lists are replaced whole.
        let o =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x", "args": ["1"]}]}}}});
        let m =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x", "args": ["2"]}]}}}});
        assert_eq!(
            three_way(&o, &m, &o, Schema::none()),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x", "args": ["2"]}]}}}})
        );
    }
}
