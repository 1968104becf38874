//! JSON merge patches and client-side apply's three-way patch: deletions from what was
//! last applied to what is applied now, plus additions and changes from the live
//! object to what is applied now (fields others set are kept). Upstream twins:
//! `apimachinery/pkg/util/jsonmergepatch/patch.go`, `evanphx/json-patch`'s
//! `CreateMergePatch`.

use serde_json::{Map, Value};

/// RFC 7386 merge patch turning `from` into `to`.
pub fn create_merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for (k, av) in a {
                match b.get(k) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(bv) if av != bv => {
                        let sub = if av.is_object() && bv.is_object() {
                            create_merge_patch(av, bv)
                        } else {
                            bv.clone()
                        };
                        patch.insert(k.clone(), sub);
                    }
                    Some(_) => {}
                }
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    patch.insert(k.clone(), bv.clone());
                }
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

/// Applies an RFC 7386 merge patch.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            apply_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

// Keeps only the nulls (deletions) or only the rest, recursively.
fn keep_or_delete_null(v: &Value, keep_null: bool) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, x) in m {
        match x {
            Value::Null if keep_null => {
                out.insert(k.clone(), Value::Null);
            }
            Value::Null => {}
            Value::Object(_) => {
                let sub = keep_or_delete_null(x, keep_null);
                if sub.as_object().is_some_and(|s| !s.is_empty())
                    || (!keep_null && x.as_object().is_some_and(|o| o.is_empty()))
                {
                    out.insert(k.clone(), sub);
                }
            }
            other if !keep_null => {
                out.insert(k.clone(), other.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn merge_maps(base: &mut Value, add: &Value) {
    let (Some(b), Some(a)) = (base.as_object_mut(), add.as_object()) else {
        return;
    };
    for (k, v) in a {
        match b.get_mut(k) {
            Some(existing) if existing.is_object() && v.is_object() => merge_maps(existing, v),
            _ => {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The patch client-side apply sends: `{}` when nothing changes.
pub fn three_way_merge_patch(original: &Value, modified: &Value, current: &Value) -> Value {
    let changes = keep_or_delete_null(&create_merge_patch(current, modified), false);
    let mut deletions = keep_or_delete_null(&create_merge_patch(original, modified), true);
    merge_maps(&mut deletions, &changes);
    deletions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn three_way_keeps_what_others_set_and_drops_what_we_stopped_setting() {
        let original = json!({"data": {"a": "1", "b": "2"}});
        let modified = json!({"data": {"a": "1", "c": "3"}});
        let current =
            json!({"data": {"a": "9", "b": "2", "x": "theirs"}, "metadata": {"uid": "u"}});
        let patch = three_way_merge_patch(&original, &modified, &current);
        assert_eq!(patch, json!({"data": {"a": "1", "b": null, "c": "3"}}));
        let mut live = current.clone();
        apply_merge_patch(&mut live, &patch);
        assert_eq!(
            live,
            json!({"data": {"a": "1", "c": "3", "x": "theirs"}, "metadata": {"uid": "u"}})
        );
        assert_eq!(
            three_way_merge_patch(&modified, &modified, &live),
            json!({})
        );
    }
}
