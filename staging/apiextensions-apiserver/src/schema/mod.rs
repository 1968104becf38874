//! Structural schemas (upstream `apiextensions-apiserver/pkg/apiserver/schema`): pruning
//! of unknown fields, defaulting and validation of custom resources, all driven by the
//! CRD version's `openAPIV3Schema`.

pub mod cel;
pub mod validation;

use serde_json::Value;

/// Where a schema node lets unknown fields stay.
fn preserves_unknown(s: &Value) -> bool {
    s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

/// ObjectMeta fields kept on an embedded resource's or the root's `metadata`.
const META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops every field the schema does not specify (upstream `pruning.Prune`); returns the
/// pruned paths. The root's apiVersion/kind/metadata are always kept.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(obj, schema, "", true, &mut pruned);
    pruned
}

fn prune_at(v: &mut Value, s: &Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let embedded = root || s["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            if embedded && let Some(Value::Object(meta)) = m.get_mut("metadata") {
                let at = if path.is_empty() {
                    "metadata".to_string()
                } else {
                    format!("{path}.metadata")
                };
                meta.retain(|k, _| {
                    let known = META_FIELDS.contains(&k.as_str());
                    if !known {
                        pruned.push(format!("{at}.{k}"));
                    }
                    known
                });
            }
            let props = s["properties"].as_object();
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            let keep_all = preserves_unknown(s);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                match sub {
                    Some(sub) => prune_at(m.get_mut(&k).unwrap(), sub, &p, false, pruned),
                    None if keep_all => {}
                    None => {
                        m.remove(&k);
                        pruned.push(p);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, it) in items.iter_mut().enumerate() {
                    prune_at(it, item_schema, &format!("{path}[{i}]"), false, pruned);
                }
            }
        }
        _ => {}
    }
}

/// Whether a schema declares any `default` (a default's own value is not searched).
pub fn has_defaults(s: &Value) -> bool {
    let Some(m) = s.as_object() else { return false };
    m.iter().any(|(k, v)| match k.as_str() {
        "default" => true,
        // Maps from property names (which may be "default") to schemas.
        "properties" | "patternProperties" => {
            v.as_object().is_some_and(|p| p.values().any(has_defaults))
        }
        "items" | "additionalProperties" | "not" => has_defaults(v),
        "allOf" | "anyOf" | "oneOf" => v.as_array().is_some_and(|a| a.iter().any(has_defaults)),
        _ => false,
    })
}

/// Fills in `default`s of absent properties, top-down (upstream `defaulting.Default`):
/// a defaulted object is itself defaulted further.
pub fn default(v: &mut Value, s: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = s["properties"].as_object() {
                for (k, ps) in props {
                    let absent = !m.contains_key(k)
                        || (m[k].is_null() && ps["nullable"].as_bool() != Some(true));
                    if absent && let Some(d) = ps.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, ps) in props {
                    if let Some(child) = m.get_mut(k) {
                        default(child, ps);
                    }
                }
            }
            if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                let props = s["properties"].as_object();
                for (k, child) in m.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        default(child, ap);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items").filter(|i| i.is_object()) {
                for it in items.iter_mut() {
                    default(it, is);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_subtrees() {
        let s = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}, "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
        }});
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "bogus": 1},
            "spec": {"a": "1", "b": 2, "free": {"anything": {"goes": true}}}, "extra": true});
        let pruned = prune(&mut o, &s);
        assert_eq!(
            o,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"a": "1", "free": {"anything": {"goes": true}}}})
        );
        assert_eq!(pruned, ["metadata.bogus", "extra", "spec.b"]);
    }

    #[test]
    fn finds_defaults_but_not_properties_named_default() {
        assert!(!has_defaults(
            &json!({"type": "object", "properties": {"default": {"type": "string"}}})
        ));
        assert!(has_defaults(
            &json!({"type": "object", "properties": {"a": {"type": "array",
            "items": {"type": "object", "properties": {"b": {"type": "string", "default": "x"}}}}}})
        ));
    }

    #[test]
    fn defaults_nested_and_in_items() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
            "replicas": {"type": "integer", "default": 1},
            "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}}
        }}}});
        let mut o = json!({});
        default(&mut o, &s);
        assert_eq!(o, json!({"spec": {"replicas": 1}}));
        let mut o = json!({"spec": {"replicas": 3, "ports": [{"port": 80}, {"protocol": "UDP"}]}});
        default(&mut o, &s);
        assert_eq!(
            o["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}])
        );
        assert_eq!(o["spec"]["replicas"], 3);
    }
}
