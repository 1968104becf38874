//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch (lists merged by their patch merge key, with the `$patch`, `$setElementOrder`,
//! `$retainKeys` and `$deleteFromPrimitiveList` directives kubectl sends).

use super::shape::{PatchList, Shape};
use apimachinery::StatusError;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self, StatusError> {
        match super::negotiation::essence(ct).as_str() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            other => Err(StatusError::unsupported_media_type(other)),
        }
    }
}

/// Upstream's bound on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// How much a JSON patch's `copy` operations may copy in all, as upstream's
/// `jsonpatch.AccumulatedCopySizeLimit` (a patch of a few copies must not double an
/// object into gigabytes).
pub const MAX_ACCUMULATED_COPY_BYTES: usize = super::negotiation::MAX_REQUEST_BODY_BYTES;

fn invalid_patch(detail: impl std::fmt::Display) -> StatusError {
    StatusError::new(
        422,
        "Invalid",
        format!("the server rejected our request due to an error in our request: {detail}"),
    )
}

/// Applies JSON patch operations one at a time, counting what `copy` copies.
fn apply_json_patch(doc: &mut Value, ops: json_patch::Patch) -> Result<(), StatusError> {
    let mut copied = 0usize;
    for op in ops.0 {
        if let json_patch::PatchOperation::Copy(c) = &op {
            let size = doc
                .pointer(c.from.as_str())
                .map(|v| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0))
                .unwrap_or(0);
            copied = copied.saturating_add(size);
            if copied > MAX_ACCUMULATED_COPY_BYTES {
                return Err(invalid_patch(format!(
                    "unable to apply the copy: the accumulated copy size {copied} exceeds the limit of {MAX_ACCUMULATED_COPY_BYTES}"
                )));
            }
        }
        json_patch::patch(doc, &[op]).map_err(invalid_patch)?;
    }
    Ok(())
}

/// A patched object may not outgrow what a request body may carry (upstream: 413).
fn bounded(doc: Value) -> Result<Value, StatusError> {
    let size = serde_json::to_vec(&doc)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > super::negotiation::MAX_REQUEST_BODY_BYTES {
        return Err(StatusError::too_large(
            super::negotiation::MAX_REQUEST_BODY_BYTES,
        ));
    }
    Ok(doc)
}

/// Applies a patch; strategic merge patches follow `shape` (the object's schema).
pub fn apply(
    kind: PatchType,
    original: &Value,
    body: &[u8],
    shape: Shape<'_>,
) -> Result<Value, StatusError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| StatusError::bad_request(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Apply => Err(StatusError::internal(
            "apply patches are merged by the field manager",
        )),
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                StatusError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(StatusError::new(
                    413,
                    "RequestEntityTooLarge",
                    format!(
                        "Request entity too large: The allowed number of operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                        ops.0.len()
                    ),
                ));
            }
            let mut doc = original.clone();
            apply_json_patch(&mut doc, ops)?;
            bounded(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(StatusError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            bounded(doc)
        }
        PatchType::Strategic => {
            let Value::Object(p) = patch else {
                return Err(StatusError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            };
            let mut doc = original.clone();
            if !doc.is_object() {
                doc = Value::Object(Map::new());
            }
            merge_map(doc.as_object_mut().unwrap(), p, shape)?;
            bounded(doc)
        }
    }
}

fn merge_map(
    doc: &mut Map<String, Value>,
    patch: Map<String, Value>,
    shape: Shape<'_>,
) -> Result<(), StatusError> {
    if let Some(directive) = patch.get("$patch").and_then(Value::as_str) {
        match directive {
            "replace" => {
                let mut p = patch.clone();
                p.remove("$patch");
                *doc = p;
                return Ok(());
            }
            "delete" => {
                doc.clear();
                return Ok(());
            }
            other => {
                return Err(StatusError::bad_request(format!(
                    "Unknown patch type: {other}"
                )));
            }
        }
    }
    let retain: Option<Vec<String>> = patch.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect()
    });
    let orders: Vec<(String, Vec<Value>, Vec<Value>)> = patch
        .iter()
        .filter_map(|(k, v)| {
            let field = k.strip_prefix("$setElementOrder/")?;
            let order = v.as_array()?.clone();
            let live = doc
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Some((field.to_string(), order, live))
        })
        .collect();
    for (k, v) in patch {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (doc.get_mut(field), &v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        match v {
            Value::Null => {
                doc.remove(&k);
            }
            Value::Object(pm) => {
                let child = shape.child(&k);
                match doc.get_mut(&k) {
                    Some(Value::Object(dm)) => merge_map(dm, pm, child)?,
                    _ => {
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, pm, child)?;
                        doc.insert(k, Value::Object(fresh));
                    }
                }
            }
            Value::Array(items) => {
                let child = shape.child(&k);
                let merged = match doc.remove(&k) {
                    Some(Value::Array(existing)) => merge_list(child, existing, items)?,
                    _ => merge_list(child, Vec::new(), items)?,
                };
                doc.insert(k, Value::Array(merged));
            }
            other => {
                doc.insert(k, other);
            }
        }
    }
    for (field, order, live) in orders {
        set_element_order(doc, &field, &order, &live, shape.child(&field));
    }
    if let Some(keep) = retain {
        doc.retain(|k, _| keep.contains(k));
    }
    Ok(())
}

/// How list items are told apart: by their merge key, or (primitives) by value.
#[derive(Clone, Copy)]
enum Identity<'a> {
    Key(&'a str),
    Value,
}

impl Identity<'_> {
    fn of<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        match self {
            Identity::Key(k) => item.get(*k),
            Identity::Value => Some(item),
        }
    }

    fn position(&self, list: &[Value], item: &Value) -> Option<usize> {
        let id = self.of(item)?;
        list.iter().position(|x| self.of(x) == Some(id))
    }
}

/// Upstream's `normalizeElementOrder`: the items the patch names come in the patch's
/// order, the server's other items keep theirs, and the two are interleaved by where
/// the live list had them; an item the live list lacks goes before a server-only one.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    id: Identity<'_>,
) -> Vec<Value> {
    let (mut patched, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| id.position(patch_order, item).is_some());
    patched.sort_by_key(|item| id.position(patch_order, item));
    let mut out = Vec::with_capacity(patched.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let before = match (id.position(server_order, l), id.position(server_order, r)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                };
                if before {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

fn merge_list(
    shape: Shape<'_>,
    existing: Vec<Value>,
    patch: Vec<Value>,
) -> Result<Vec<Value>, StatusError> {
    let key = match shape.patch_list() {
        PatchList::Primitive => {
            let server_order = existing.clone();
            let mut merged = existing;
            for p in &patch {
                if !merged.contains(p) {
                    merged.push(p.clone());
                }
            }
            return Ok(normalize_order(
                merged,
                &patch,
                &server_order,
                Identity::Value,
            ));
        }
        // No merge strategy: the list is replaced.
        PatchList::Replace => return Ok(patch),
        PatchList::Keyed(k) => k,
    };
    let key = key.as_str();
    let id = Identity::Key(key);
    let item = shape.item();
    // Upstream's mergeSliceWithSpecialElements: deletions and `replace` first.
    let mut existing = existing;
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for p in patch {
        let Value::Object(pm) = p else {
            return Err(StatusError::bad_request(format!(
                "unable to find api field in struct for the list: expected a map, got {p}"
            )));
        };
        match pm.get("$patch").and_then(Value::as_str) {
            None => items.push(pm),
            Some("delete") => {
                let Some(v) = pm.get(key) else {
                    return Err(StatusError::bad_request(format!(
                        "map: {} does not contain declared merge key: {key}",
                        Value::Object(pm.clone())
                    )));
                };
                existing.retain(|e| e.get(key) != Some(v));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(StatusError::bad_request(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            Some(other) => {
                return Err(StatusError::bad_request(format!(
                    "Unknown patch type: {other}"
                )));
            }
        }
    }
    if replace {
        return Ok(items.into_iter().map(Value::Object).collect());
    }
    let server_order = existing.clone();
    let mut merged = existing;
    let mut patch_order = Vec::with_capacity(items.len());
    for pm in items {
        let Some(v) = pm.get(key).cloned() else {
            return Err(StatusError::bad_request(format!(
                "map: {} does not contain declared merge key: {key}",
                Value::Object(pm)
            )));
        };
        patch_order.push(Value::Object(Map::from_iter([(
            key.to_string(),
            v.clone(),
        )])));
        match merged.iter().position(|e| e.get(key) == Some(&v)) {
            Some(i) => {
                if let Value::Object(em) = &mut merged[i] {
                    merge_map(em, pm, item)?;
                }
            }
            None => {
                let mut fresh = Map::new();
                merge_map(&mut fresh, pm, item)?;
                merged.push(Value::Object(fresh));
            }
        }
    }
    Ok(normalize_order(merged, &patch_order, &server_order, id))
}

/// Upstream's `mergePatchIntoOriginal`: a `$setElementOrder/<field>` list orders the
/// merged field; it takes precedence over the patch's order and the live order.
fn set_element_order(
    doc: &mut Map<String, Value>,
    field: &str,
    order: &[Value],
    server_order: &[Value],
    shape: Shape<'_>,
) {
    let id = match shape.patch_list() {
        PatchList::Keyed(k) => k,
        PatchList::Primitive => String::new(),
        PatchList::Replace => return,
    };
    let identity = if id.is_empty() {
        Identity::Value
    } else {
        Identity::Key(&id)
    };
    if let Some(Value::Array(list)) = doc.remove(field) {
        let ordered = normalize_order(list, order, server_order, identity);
        doc.insert(field.to_string(), Value::Array(ordered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_by_key() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}]}, {"name": "b", "image": "y"}]}, "metadata": {"labels": {"k": "v", "gone": "x"}}});
        let patch = json!({
            "metadata": {"labels": {"gone": null, "new": "n"}},
            "spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                     "containers": [{"name": "a", "image": "x:2"}, {"name": "b", "$patch": "delete"}]}
        });
        let out = apply(
            PatchType::Strategic,
            &doc,
            patch.to_string().as_bytes(),
            Shape::unknown(),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"k": "v", "new": "n"}));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "x:2", "env": [{"name": "A", "value": "1"}]}])
        );
    }

    /// Upstream's order rules (`normalizeElementOrder`), as the StatefulSet collection
    /// conformance spec relies on: an item the live list lacks comes first, the patch
    /// orders its own items, and `$setElementOrder` overrides both.
    #[test]
    fn strategic_lists_keep_upstreams_order() {
        let doc = json!({"spec": {"containers": [{"name": "web", "image": "httpd"}],
            "finalizers": ["a", "b"]}});
        let smp = |patch: Value| {
            apply(
                PatchType::Strategic,
                &doc,
                patch.to_string().as_bytes(),
                Shape::unknown(),
            )
            .unwrap()
        };
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let out = smp(json!({"spec": {"containers": [{"name": "new", "image": "pause"}]}}));
        assert_eq!(names(&out), ["new", "web"]);
        let out = smp(json!({"spec": {"containers": [
            {"name": "z", "image": "1"}, {"name": "web", "image": "2"}, {"name": "y", "image": "3"}]}}));
        assert_eq!(names(&out), ["z", "web", "y"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "2");
        let out = smp(json!({"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "pause"}]}}));
        assert_eq!(names(&out), ["web", "new"]);
        let out = smp(json!({"spec": {"containers": [{"name": "web", "$patch": "delete"}]}}));
        assert_eq!(out["spec"]["containers"], json!([]));
        let bad = apply(
            PatchType::Strategic,
            &doc,
            br#"{"spec": {"containers": [{"image": "x"}]}}"#,
            Shape::unknown(),
        )
        .unwrap_err();
        assert_eq!(bad.code, 400, "{bad:?}");
    }

    #[test]
    fn json_and_merge() {
        let doc = json!({"a": {"b": 1}, "l": [1, 2]});
        let out = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"replace","path":"/a/b","value":2},{"op":"add","path":"/l/-","value":3}]"#,
            Shape::unknown(),
        )
        .unwrap();
        assert_eq!(out, json!({"a": {"b": 2}, "l": [1, 2, 3]}));
        let out = apply(
            PatchType::Merge,
            &doc,
            br#"{"a":null,"l":[9]}"#,
            Shape::unknown(),
        )
        .unwrap();
        assert_eq!(out, json!({"l": [9]}));
        assert!(
            apply(
                PatchType::Json,
                &doc,
                br#"[{"op":"test","path":"/a/b","value":5}]"#,
                Shape::unknown()
            )
            .is_err()
        );
    }
}
