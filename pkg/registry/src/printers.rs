//! Helpers for upstream's table printers (`pkg/printers/internalversion`): column
//! definitions and the cell formats they share.

use apiserver::registry::strategy::Column;
use serde_json::{Value, json};

/// Column definitions from `(name, type, priority)`; priority 1 = `-o wide` only.
pub fn cols(spec: &[(&'static str, &'static str, i32)]) -> Vec<Column> {
    spec.iter()
        .map(|(name, type_, priority)| Column {
            name: (*name).into(),
            type_: (*type_).into(),
            format: "".into(),
            description: "".into(),
            priority: *priority,
        })
        .collect()
}

/// A string cell, `<none>` when absent or empty.
pub fn or_none(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if !s.is_empty() => json!(s),
        _ => match v {
            Value::Null | Value::String(_) => json!("<none>"),
            other => json!(other.to_string()),
        },
    }
}

/// An integer cell (0 when absent).
pub fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

/// `a,b,c` from a string array (or one field of each object in an array).
pub fn join(v: &Value, field: Option<&str>) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| match field {
            Some(f) => e[f].as_str(),
            None => e.as_str(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `join` with `<none>` for nothing.
pub fn join_or_none(v: &Value, field: Option<&str>) -> Value {
    let s = join(v, field);
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

pub fn age(obj: &Value) -> Value {
    crate::typed::age_cell(obj)
}

/// Age of a timestamp field (`<none>` if unset), as in LAST SCHEDULE.
pub fn since(ts: &Value) -> Value {
    match ts.as_str() {
        Some(t) => json!(apiserver::endpoints::table::age(Some(t))),
        None => json!("<none>"),
    }
}

/// `key=value,...` of a string map, `<none>` when empty.
pub fn map_string(v: &Value) -> Value {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if parts.is_empty() {
        json!("<none>")
    } else {
        json!(parts.join(","))
    }
}

/// A label selector in its string form, `<none>` when empty.
pub fn selector(sel: &Value) -> Value {
    let s = apimachinery::labels::format_label_selector(sel);
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

/// CONTAINERS and IMAGES of a pod template spec.
pub fn containers_images(pod_spec: &Value) -> [Value; 2] {
    [
        json!(join(&pod_spec["containers"], Some("name"))),
        json!(join(&pod_spec["containers"], Some("image"))),
    ]
}

/// Access modes as kubectl abbreviates them (RWO, ROX, RWX, RWOP).
pub fn access_modes(v: &Value) -> Value {
    let modes: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    json!(modes.join(","))
}

/// `true`/`false` cell of an optional boolean with a default.
pub fn boolean(v: &Value, default: bool) -> Value {
    json!(v.as_bool().unwrap_or(default))
}
