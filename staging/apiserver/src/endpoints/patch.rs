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
    if let Some(keep) = retain {
        doc.retain(|k, _| keep.contains(k));
    }
    Ok(())
}

fn merge_list(
    shape: Shape<'_>,
    mut existing: Vec<Value>,
    patch: Vec<Value>,
) -> Result<Vec<Value>, StatusError> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .into_iter()
            .filter(|p| p.get("$patch").is_none())
            .collect());
    }
    let key = match shape.patch_list() {
        PatchList::Primitive => {
            for p in patch {
                if !existing.contains(&p) {
                    existing.push(p);
                }
            }
            return Ok(existing);
        }
        // No merge strategy: the list is replaced.
        PatchList::Replace => return Ok(patch),
        PatchList::Keyed(k) => k,
    };
    let key = key.as_str();
    let item = shape.item();
    for p in patch {
        let Value::Object(pm) = p else { continue };
        let id = pm.get(key).cloned();
        let pos = existing
            .iter()
            .position(|e| e.get(key) == id.as_ref() && id.is_some());
        let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                if let Value::Object(em) = &mut existing[i] {
                    merge_map(em, pm, item)?;
                }
            }
            (None, false) => {
                let mut fresh = Map::new();
                merge_map(&mut fresh, pm, item)?;
                existing.push(Value::Object(fresh));
            }
        }
    }
    Ok(existing)
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
