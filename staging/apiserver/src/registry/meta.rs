//! `metadata` accessors on JSON objects.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"].as_object_mut().unwrap()
}

pub fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    str_field(obj, "uid")
}

pub fn resource_version(obj: &Value) -> &str {
    str_field(obj, "resourceVersion")
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, f: Vec<String>) {
    let m = meta_mut(obj);
    if f.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), Value::from(f));
    }
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    obj["metadata"]["deletionTimestamp"].as_str()
}

/// RFC 3339 at second precision, as upstream's `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

pub fn rfc3339(t: jiff::Timestamp) -> String {
    let secs = jiff::Timestamp::from_second(t.as_second()).unwrap_or(t);
    secs.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Everything but `metadata` and `status`: what a generation bump tracks.
pub fn spec_equal(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let strip = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    strip(a) == strip(b)
}

/// The resourceVersion a subresource write was pinned to by its body (`metadata.
/// resourceVersion`), for a compare-and-swap on exactly that version.
pub fn pinned_resource_version(body: &Value) -> Option<String> {
    body["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Sets (pinned) or clears (latest) the resourceVersion a transform hands back to
/// `guaranteed_update`.
pub fn pin_resource_version(obj: &mut Value, pinned: &Option<String>) {
    match pinned {
        Some(rv) => {
            meta_mut(obj).insert("resourceVersion".into(), Value::from(rv.as_str()));
        }
        None => {
            meta_mut(obj).remove("resourceVersion");
        }
    }
}
