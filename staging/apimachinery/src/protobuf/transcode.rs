//! JSON ⇄ protobuf for every built-in type, driven by the message table: what Go clients
//! (kubectl, client-go components) send and accept as `application/vnd.kubernetes.protobuf`.
//!
//! Decoding keeps every field the sender set, with two exceptions. Go writes its non-pointer
//! fields even when they hold the zero value, which there means "unset" (defaulting fills
//! it in, JSON leaves it out):
//! - an empty singular string is left out, except where a pointer's "" means something of
//!   its own;
//! - a 0 or false is left out for the fields named in `ZERO_IS_UNSET`, all non-pointers
//!   (or pointers whose nil means the same). Other numbers and bools are kept: a pointer's
//!   0 or false (`runAsUser: 0`, `replicas: 0`, `automountServiceAccountToken: false`) is
//!   a choice of its own, and the wire does not say which fields are pointers.

use super::schema::{Kind, Label, Message, Schema, Special};
use super::{Field as Wire, fields};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

/// `*string` fields whose empty value is not the same as unset (a claim with
/// `storageClassName: ""` asks for no class at all).
const KEEP_EMPTY: &[&str] = &["storageClassName", "volumeAttributesClassName"];

/// Fields whose 0 or false is Go's "unset" wherever the name occurs.
const ZERO_IS_UNSET: &[&str] = &[
    "hostPort",
    "nodePort",
    "healthCheckNodePort",
    "minReadySeconds",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "generation",
    "observedGeneration",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "stdin",
    "stdinOnce",
    "tty",
    "paused",
    "readOnly",
    "unschedulable",
    "publishNotReadyAddresses",
    // ServiceBackendPort: a port by name leaves its number 0 (`kubectl create ingress`).
    "number",
];

/// Pointer fields without `omitempty`: Go prints them as `null` when they are unset, so a
/// message decoded without them carries the null (`kubectl create token -o yaml`).
const NULL_WHEN_ABSENT: &[(&str, &str)] =
    &[("api.authentication.v1.TokenRequestSpec", "boundObjectRef")];

const OBJECT_META: &str = "apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// How deep messages may nest (a client could otherwise nest JSONSchemaProps until the
/// stack runs out); serde_json stops at 128 levels too.
const MAX_DEPTH: usize = 100;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of nesting while it lives.
struct Nested;

impl Nested {
    fn enter(m: &Message) -> Result<Nested, String> {
        let d = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let guard = Nested;
        if d > MAX_DEPTH {
            return Err(format!(
                "{}: nested more than {MAX_DEPTH} levels deep",
                m.name
            ));
        }
        Ok(guard)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Go's zero `time.Time` in Unix seconds: a non-pointer time that was never set.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

// ---------------------------------------------------------------- decoding

/// The JSON form of an encoded message.
pub fn decode(idx: usize, buf: &[u8]) -> Result<Value, String> {
    decode_message(Schema::get(), idx, buf)
}

fn invalid(m: &Message) -> String {
    format!("invalid protobuf encoding of {}", m.name)
}

fn decode_message(s: &Schema, idx: usize, buf: &[u8]) -> Result<Value, String> {
    let m = s.message(idx).ok_or("unknown protobuf message")?;
    let _nested = Nested::enter(m)?;
    let wire = fields(buf).ok_or_else(|| invalid(m))?;
    if m.special != Special::None {
        return decode_special(s, m, &wire);
    }
    let mut obj = Map::new();
    for (tag, w) in &wire {
        let Some(f) = m.field(*tag) else { continue };
        match f.label {
            Label::Optional => {
                let v = decode_value(s, f.kind, w).ok_or_else(|| invalid(m))??;
                if v.is_null() && is_time(s, f.kind) {
                    // A time on the wire is a Go `metav1.Time` that JSON prints, as `null`
                    // when it is the zero time (`lastProbeTime: null`), except where the
                    // field is `omitzero` (`creationTimestamp`, since 1.33).
                    if !(m.name == OBJECT_META && f.json == "creationTimestamp") {
                        obj.insert(f.json.to_string(), v);
                    }
                    continue;
                }
                let unset = v.is_null()
                    || (v == "" && !KEEP_EMPTY.contains(&f.json))
                    || ((v == 0 || v == false) && ZERO_IS_UNSET.contains(&f.json));
                if !unset {
                    obj.insert(f.json.to_string(), v);
                }
            }
            Label::Repeated => {
                let items = obj
                    .entry(f.json.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = items else {
                    return Err(invalid(m));
                };
                match (f.kind, w) {
                    // A packed run of numbers.
                    (Kind::Int32 | Kind::Int64 | Kind::Bool, Wire::Bytes(b)) => {
                        let mut pos = 0;
                        while pos < b.len() {
                            let n = super::varint(b, &mut pos).ok_or_else(|| invalid(m))?;
                            items.push(scalar_number(f.kind, n));
                        }
                    }
                    _ => items.push(decode_value(s, f.kind, w).ok_or_else(|| invalid(m))??),
                }
            }
            Label::Map => {
                let Wire::Bytes(entry) = w else {
                    return Err(invalid(m));
                };
                let entry = fields(entry).ok_or_else(|| invalid(m))?;
                let key = super::string_field(&entry, 1).unwrap_or_default();
                let value = match entry.iter().find(|(t, _)| *t == 2) {
                    Some((_, v)) => decode_value(s, f.kind, v).ok_or_else(|| invalid(m))??,
                    None => zero(s, f.kind),
                };
                let map = obj
                    .entry(f.json.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
            Label::Inline => {
                let (Kind::Message(child), Wire::Bytes(b)) = (f.kind, w) else {
                    return Err(invalid(m));
                };
                if let Value::Object(inner) = decode_message(s, child, b)? {
                    obj.extend(inner);
                }
            }
        }
    }
    for (_, field) in NULL_WHEN_ABSENT.iter().filter(|(msg, _)| *msg == m.name) {
        obj.entry(field.to_string()).or_insert(Value::Null);
    }
    Ok(Value::Object(obj))
}

/// Whether a field holds a `metav1.Time` or `metav1.MicroTime`.
fn is_time(s: &Schema, kind: Kind) -> bool {
    matches!(kind, Kind::Message(idx)
        if s.message(idx).is_some_and(|m| matches!(m.special, Special::Time | Special::MicroTime)))
}

fn scalar_number(kind: Kind, n: u64) -> Value {
    match kind {
        Kind::Bool => Value::Bool(n != 0),
        Kind::Int32 => Value::from(n as i32),
        _ => Value::from(n as i64),
    }
}

/// What a map entry without a value holds.
fn zero(s: &Schema, kind: Kind) -> Value {
    match kind {
        Kind::String | Kind::Bytes => Value::from(""),
        Kind::Bool => Value::Bool(false),
        Kind::Int32 | Kind::Int64 | Kind::Double => Value::from(0),
        Kind::Message(idx) => decode_message(s, idx, &[]).unwrap_or(Value::Null),
    }
}

/// One value; None when the wire type does not fit the field.
fn decode_value(s: &Schema, kind: Kind, w: &Wire<'_>) -> Option<Result<Value, String>> {
    Some(Ok(match (kind, w) {
        (Kind::String, Wire::Bytes(b)) => Value::from(String::from_utf8_lossy(b).into_owned()),
        (Kind::Bytes, Wire::Bytes(b)) => Value::from(STANDARD.encode(b)),
        (Kind::Bool | Kind::Int32 | Kind::Int64, Wire::Varint(n)) => scalar_number(kind, *n),
        (Kind::Double, Wire::Fixed64(bits)) => {
            Number::from_f64(f64::from_bits(*bits)).map_or(Value::Null, Value::Number)
        }
        (Kind::Message(idx), Wire::Bytes(b)) => return Some(decode_message(s, idx, b)),
        _ => return None,
    }))
}

fn varint_field(wire: &[(u32, Wire<'_>)], tag: u32) -> Option<u64> {
    wire.iter().find_map(|(t, w)| match w {
        Wire::Varint(n) if *t == tag => Some(*n),
        _ => None,
    })
}

/// The message a special's field holds, decoded.
fn decode_child(s: &Schema, m: &Message, tag: u32, b: &[u8]) -> Result<Value, String> {
    match m.field(tag).map(|f| f.kind) {
        Some(Kind::Message(idx)) => decode_message(s, idx, b),
        _ => Err(invalid(m)),
    }
}

fn decode_special(s: &Schema, m: &Message, wire: &[(u32, Wire<'_>)]) -> Result<Value, String> {
    let bytes = |tag| super::bytes_field(wire, tag);
    Ok(match m.special {
        Special::Time | Special::MicroTime => {
            let secs = varint_field(wire, 1).unwrap_or(0) as i64;
            let nanos = varint_field(wire, 2).unwrap_or(0) as i32;
            // Go writes its zero time as an empty message (`Time.Marshal`) and reads an
            // empty message back as the zero time, never as 1970.
            if wire.is_empty() || (secs == ZERO_TIME_SECONDS && nanos == 0) {
                return Ok(Value::Null);
            }
            let micro = m.special == Special::MicroTime;
            Value::from(format_time(secs, nanos, micro).ok_or_else(|| invalid(m))?)
        }
        Special::Duration => Value::from(crate::duration::format_go(
            varint_field(wire, 1).unwrap_or(0) as i64,
        )),
        Special::Quantity => Value::from(super::string_field(wire, 1).unwrap_or("0".into())),
        Special::IntOrString => {
            if varint_field(wire, 1) == Some(1) {
                Value::from(super::string_field(wire, 3).unwrap_or_default())
            } else {
                Value::from(varint_field(wire, 2).unwrap_or(0) as i32)
            }
        }
        Special::RawJson => match bytes(1) {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(super::MAGIC) => {
                super::decode_object(raw).map_err(|e| e.to_string())?
            }
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| format!("{}: embedded JSON: {e}", m.name))?,
        },
        Special::SchemaOrArray => match bytes(1) {
            Some(b) => decode_child(s, m, 1, b)?,
            None => Value::Array(
                wire.iter()
                    .filter_map(|(t, w)| match w {
                        Wire::Bytes(b) if *t == 2 => Some(decode_child(s, m, 2, b)),
                        _ => None,
                    })
                    .collect::<Result<_, _>>()?,
            ),
        },
        Special::SchemaOrBool => match bytes(2) {
            Some(b) => decode_child(s, m, 2, b)?,
            None => Value::Bool(varint_field(wire, 1).unwrap_or(0) != 0),
        },
        Special::SchemaOrStringArray => match bytes(1) {
            Some(b) => decode_child(s, m, 1, b)?,
            None => Value::from(super::repeated_strings(wire, 2)),
        },
        Special::StringList => Value::from(super::repeated_strings(wire, 1)),
        Special::None => return Err(invalid(m)),
    })
}

fn format_time(secs: i64, nanos: i32, micro: bool) -> Option<String> {
    let ts = jiff::Timestamp::new(secs, if micro { nanos } else { 0 }).ok()?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Some(ts.strftime(fmt).to_string())
}

// ---------------------------------------------------------------- encoding

/// The encoded message of a JSON value.
pub fn encode(idx: usize, v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    encode_message(Schema::get(), idx, v, &mut out)?;
    Ok(out)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_varint(out, (u64::from(tag) << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, tag: u32, n: u64) {
    put_varint(out, u64::from(tag) << 3);
    put_varint(out, n);
}

fn mismatch(m: &Message, json: &str, v: &Value) -> String {
    format!("{}.{json}: cannot encode {v} as protobuf", m.name)
}

fn encode_message(s: &Schema, idx: usize, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let m = s.message(idx).ok_or("unknown protobuf message")?;
    let _nested = Nested::enter(m)?;
    if m.special != Special::None {
        return encode_special(s, m, v, out);
    }
    let Value::Object(obj) = v else {
        return Err(mismatch(m, "", v));
    };
    for f in &m.fields {
        if f.label == Label::Inline {
            let Kind::Message(child) = f.kind else {
                continue;
            };
            let mut inner = Vec::new();
            encode_message(s, child, v, &mut inner)?;
            put_bytes(out, f.tag, &inner);
            continue;
        }
        let Some(val) = obj.get(f.json).filter(|v| !v.is_null()) else {
            if obj.get(f.json).is_some_and(Value::is_null)
                && f.label == Label::Optional
                && is_time(s, f.kind)
            {
                // Go writes its zero (JSON null) non-pointer time as an empty message.
                put_bytes(out, f.tag, b"");
            }
            continue;
        };
        match f.label {
            Label::Repeated => {
                let Value::Array(items) = val else {
                    return Err(mismatch(m, f.json, val));
                };
                for item in items {
                    encode_value(s, m, f.json, f.tag, f.kind, item, out)?;
                }
            }
            Label::Map => {
                let Value::Object(map) = val else {
                    return Err(mismatch(m, f.json, val));
                };
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for k in keys {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    encode_value(s, m, f.json, 2, f.kind, &map[k], &mut entry)?;
                    put_bytes(out, f.tag, &entry);
                }
            }
            _ => encode_value(s, m, f.json, f.tag, f.kind, val, out)?,
        }
    }
    Ok(())
}

fn encode_value(
    s: &Schema,
    m: &Message,
    json: &str,
    tag: u32,
    kind: Kind,
    v: &Value,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match (kind, v) {
        (Kind::String, Value::String(x)) => put_bytes(out, tag, x.as_bytes()),
        (Kind::String, Value::Number(_) | Value::Bool(_)) => {
            put_bytes(out, tag, v.to_string().as_bytes())
        }
        (Kind::Bytes, Value::String(x)) => {
            let b = STANDARD.decode(x).map_err(|_| mismatch(m, json, v))?;
            put_bytes(out, tag, &b)
        }
        (Kind::Bool, Value::Bool(b)) => put_int(out, tag, u64::from(*b)),
        (Kind::Int32 | Kind::Int64, Value::Number(n)) => {
            let n = n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| mismatch(m, json, v))?;
            put_int(out, tag, n as u64)
        }
        (Kind::Double, Value::Number(n)) => {
            put_varint(out, (u64::from(tag) << 3) | 1);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
        }
        (Kind::Message(idx), _) => {
            let mut inner = Vec::new();
            encode_message(s, idx, v, &mut inner)?;
            put_bytes(out, tag, &inner)
        }
        _ => return Err(mismatch(m, json, v)),
    }
    Ok(())
}

fn encode_child(
    s: &Schema,
    m: &Message,
    tag: u32,
    v: &Value,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match m.field(tag).map(|f| f.kind) {
        Some(kind @ Kind::Message(_)) => encode_value(s, m, "", tag, kind, v, out),
        _ => Err(invalid(m)),
    }
}

fn encode_special(s: &Schema, m: &Message, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match (m.special, v) {
        (Special::Time | Special::MicroTime, Value::String(t)) => {
            let ts: jiff::Timestamp = t.parse().map_err(|_| mismatch(m, "", v))?;
            put_int(out, 1, ts.as_second() as u64);
            if m.special == Special::MicroTime {
                put_int(out, 2, ts.subsec_nanosecond() as u64);
            }
        }
        (Special::Duration, Value::String(d)) => {
            let nanos = crate::duration::parse_go_nanos(d).map_err(|_| mismatch(m, "", v))?;
            put_int(out, 1, nanos as u64);
        }
        (Special::Quantity, Value::String(q)) => put_bytes(out, 1, q.as_bytes()),
        (Special::Quantity, Value::Number(n)) => put_bytes(out, 1, n.to_string().as_bytes()),
        (Special::IntOrString, Value::Number(n)) => {
            put_int(out, 1, 0);
            put_int(out, 2, n.as_i64().unwrap_or(0) as i32 as i64 as u64);
        }
        (Special::IntOrString, Value::String(x)) => {
            put_int(out, 1, 1);
            put_bytes(out, 3, x.as_bytes());
        }
        (Special::RawJson, _) => {
            put_bytes(out, 1, &serde_json::to_vec(v).map_err(|e| e.to_string())?)
        }
        (Special::SchemaOrArray, Value::Array(items)) => {
            for item in items {
                encode_child(s, m, 2, item, out)?;
            }
        }
        (Special::SchemaOrArray, _) => encode_child(s, m, 1, v, out)?,
        (Special::SchemaOrBool, Value::Bool(b)) => put_int(out, 1, u64::from(*b)),
        (Special::SchemaOrBool, _) => {
            put_int(out, 1, 1);
            encode_child(s, m, 2, v, out)?;
        }
        (Special::SchemaOrStringArray | Special::StringList, Value::Array(items)) => {
            let tag = if m.special == Special::StringList {
                1
            } else {
                2
            };
            for item in items {
                let text = item.as_str().ok_or_else(|| mismatch(m, "", item))?;
                put_bytes(out, tag, text.as_bytes());
            }
        }
        (Special::SchemaOrStringArray, _) => encode_child(s, m, 1, v, out)?,
        _ => return Err(mismatch(m, "", v)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(api_version: &str, kind: &str, v: Value) -> Value {
        let s = Schema::get();
        let idx = s.by_kind(api_version, kind).unwrap();
        decode(idx, &encode(idx, &v).unwrap()).unwrap()
    }

    #[test]
    fn deployment_round_trips() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "x": ""},
                "creationTimestamp": "2026-11-24T10:00:00Z", "generation": 3,
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}},
                    "time": "2026-11-24T10:00:00Z"}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"automountServiceAccountToken": false,
                        "securityContext": {"runAsUser": 0},
                        "containers": [{"name": "httpd", "image": "busybox:1.36",
                            "command": ["httpd", "-f", ""],
                            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80},
                                "periodSeconds": 2},
                            "env": [{"name": "K", "valueFrom": {"configMapKeyRef":
                                {"name": "cm", "key": "k", "optional": true}}}]}],
                        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]}}},
            "status": {"conditions": [{"type": "Available", "status": "True",
                "lastUpdateTime": "2026-11-24T10:00:01Z"}]}
        });
        assert_eq!(round_trip("apps/v1", "Deployment", d.clone()), d);
    }

    /// JSON names with Go initialisms that the proto names spell differently.
    #[test]
    fn initialism_json_names_round_trip() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
            "volumes": [
                {"name": "down", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "sio", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "x"}}}]}});
        assert_eq!(round_trip("v1", "Pod", pod.clone()), pod);
        let pv = json!({"metadata": {"name": "pv"}, "spec": {"scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "x"}}}});
        assert_eq!(round_trip("v1", "PersistentVolume", pv.clone()), pv);
    }

    #[test]
    fn specials_round_trip() {
        let lease = json!({"metadata": {"name": "n"}, "spec": {
            "renewTime": "2026-11-24T10:00:00.123456Z", "leaseDurationSeconds": 40}});
        assert_eq!(
            round_trip("coordination.k8s.io/v1", "Lease", lease.clone()),
            lease
        );
        let secret = json!({"metadata": {"name": "s"}, "data": {"k": "aGk="}, "type": "Opaque"});
        assert_eq!(round_trip("v1", "Secret", secret.clone()), secret);
        let crd = json!({"metadata": {"name": "a.b"}, "spec": {"group": "b", "scope": "Namespaced",
            "names": {"plural": "a", "kind": "A"}, "versions": [{"name": "v1", "served": true,
            "storage": true, "schema": {"openAPIV3Schema": {"type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"spec": {"type": "object", "additionalProperties": false,
                    "default": {"a": [1, "x"]}, "items": [{"type": "string"}]}},
                "required": ["spec"]}}}]}});
        assert_eq!(
            round_trip(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                crd.clone()
            ),
            crd
        );
        let role = json!({"metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        assert_eq!(
            round_trip("rbac.authorization.k8s.io/v1", "Role", role.clone()),
            role
        );
        let rt = json!({"metadata": {"name": "rt"}, "handler": "runc",
            "overhead": {"podFixed": {"cpu": "10m"}}});
        assert_eq!(round_trip("node.k8s.io/v1", "RuntimeClass", rt.clone()), rt);
    }

    #[test]
    fn go_zero_values_are_unset() {
        // What a Go client writes for a mostly empty Pod: empty strings and a zero time.
        let s = Schema::get();
        let meta_idx = s
            .by_name("apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .unwrap();
        let mut time = Vec::new();
        put_int(&mut time, 1, ZERO_TIME_SECONDS as u64);
        let mut meta = Vec::new();
        put_bytes(&mut meta, 1, b"p");
        put_bytes(&mut meta, 2, b"");
        put_int(&mut meta, 7, 0);
        put_bytes(&mut meta, 8, &time);
        // Go's `Time.Marshal` writes the zero time as an empty message.
        put_bytes(&mut meta, 9, b"");
        // A pointer's 0 stays: deletionGracePeriodSeconds 0 deletes at once.
        put_int(&mut meta, 10, 0);
        // A zero time on the wire is Go's zero `metav1.Time`, which JSON prints as null,
        // but `creationTimestamp` is `omitzero`.
        assert_eq!(
            decode(meta_idx, &meta).unwrap(),
            json!({"name": "p", "deletionGracePeriodSeconds": 0, "deletionTimestamp": null})
        );
        let condition = s.by_name("api.core.v1.PodCondition").unwrap();
        let mut cond = Vec::new();
        put_bytes(&mut cond, 1, b"Ready");
        put_bytes(&mut cond, 3, b"");
        assert_eq!(
            decode(condition, &cond).unwrap(),
            json!({"type": "Ready", "lastProbeTime": null})
        );
        // And a null time goes back on the wire as the empty message Go writes.
        let mut again = Vec::new();
        put_bytes(&mut again, 1, b"p");
        put_bytes(&mut again, 8, b"");
        assert_eq!(
            encode(meta_idx, &json!({"name": "p", "creationTimestamp": null})).unwrap(),
            again
        );
        // Pointers without omitempty print null when unset.
        let token_spec = s.by_name("api.authentication.v1.TokenRequestSpec").unwrap();
        assert_eq!(
            decode(token_spec, &[]).unwrap(),
            json!({"boundObjectRef": null})
        );
        let pvc = s.by_name("api.core.v1.PersistentVolumeClaimSpec").unwrap();
        let mut spec = Vec::new();
        put_bytes(&mut spec, 5, b"");
        assert_eq!(decode(pvc, &spec).unwrap(), json!({"storageClassName": ""}));
    }

    #[test]
    fn envelope_round_trips() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c"}, "data": {"a": "1"}});
        let bytes = super::super::encode_object(&cm).unwrap();
        assert!(bytes.starts_with(super::super::MAGIC));
        assert_eq!(super::super::decode_object(&bytes).unwrap(), cm);
        let frame = super::super::encode_watch_event("ADDED", &cm).unwrap();
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        assert!(super::super::decode_object(b"{}").is_err());
        assert!(!super::super::can_encode(
            &json!({"apiVersion": "example.com/v1", "kind": "Foo"})
        ));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_crash() {
        let s = Schema::get();
        let props = s
            .by_name("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps")
            .unwrap();
        let not_tag = s.messages[props]
            .fields
            .iter()
            .find(|f| f.json == "not")
            .unwrap()
            .tag;
        // 5,000 levels of `not` (far past the limit), built inside out.
        let mut msg = Vec::new();
        for _ in 0..5_000 {
            let mut outer = Vec::new();
            put_bytes(&mut outer, not_tag, &msg);
            msg = outer;
        }
        let err = decode(props, &msg).unwrap_err();
        assert!(err.contains("nested more than"), "{err}");
        // Truncated and mistyped input.
        let d = s.by_kind("apps/v1", "Deployment").unwrap();
        assert!(decode(d, &[0x12, 0x05, 0x01]).is_err());
        assert!(
            decode(d, &[0x10, 0x01]).is_err(),
            "a varint where spec's message goes"
        );
        // The depth counter is back to zero afterwards.
        assert!(decode(d, &[]).is_ok());
        let deep = (0..200).fold(json!({}), |acc, _| json!({"not": acc}));
        assert!(encode(props, &deep).is_err());
    }
}
