//! `/openapi/v2` as protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`,
//! gnostic's `openapi.v2.Document`), the form client-go's discovery client asks for (kubectl
//! `explain --output=plaintext-openapiv2`, validation and patch fallbacks). Clients read
//! the definitions; paths stay in the JSON document. Field numbers are gnostic's.

use serde_json::{Map, Value};

/// A protobuf message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// gnostic's `Any`: the value as YAML (JSON is YAML).
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &format!("{v}\n"));
    m
}

fn named_any(name: &str, v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, any(v));
    m
}

fn named_schema(name: &str, s: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, schema(s));
    m
}

fn schema(s: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = s.as_object() else { return m };
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
    let num = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    m.string(1, str_of("$ref"));
    m.string(2, str_of("format"));
    m.string(3, str_of("title"));
    m.string(4, str_of("description"));
    if let Some(d) = o.get("default") {
        m.message(5, any(d));
    }
    m.double(6, num("multipleOf"));
    m.double(7, num("maximum"));
    m.bool(8, flag("exclusiveMaximum"));
    m.double(9, num("minimum"));
    m.bool(10, flag("exclusiveMinimum"));
    m.int(11, int("maxLength"));
    m.int(12, int("minLength"));
    m.string(13, str_of("pattern"));
    m.int(14, int("maxItems"));
    m.int(15, int("minItems"));
    m.bool(16, flag("uniqueItems"));
    m.int(17, int("maxProperties"));
    m.int(18, int("minProperties"));
    for r in o
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.bytes(19, r.as_str().unwrap_or_default().as_bytes());
    }
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut ap = Msg::default();
            ap.key(2, 0);
            ap.varint(*b as u64);
            m.message(21, ap);
        }
        Some(ap @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(ap));
            m.message(21, item);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut ti = Msg::default();
            ti.bytes(1, t.as_bytes());
            m.message(22, ti);
        }
        Some(Value::Array(ts)) => {
            let mut ti = Msg::default();
            for t in ts {
                ti.bytes(1, t.as_str().unwrap_or_default().as_bytes());
            }
            m.message(22, ti);
        }
        _ => {}
    }
    match o.get("items") {
        Some(Value::Array(items)) => {
            let mut it = Msg::default();
            for i in items {
                it.message(1, schema(i));
            }
            m.message(23, it);
        }
        Some(i @ Value::Object(_)) => {
            let mut it = Msg::default();
            it.message(1, schema(i));
            m.message(23, it);
        }
        _ => {}
    }
    for a in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(a));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (k, v) in props {
            p.message(1, named_schema(k, v));
        }
        m.message(25, p);
    }
    m.bool(27, flag("readOnly"));
    if let Some(e) = o.get("example") {
        m.message(30, any(e));
    }
    for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.message(31, named_any(k, v));
    }
    m
}

/// The protobuf `Document` of a Swagger 2.0 JSON document: swagger, info, definitions.
pub fn document(doc: &Value) -> Vec<u8> {
    let mut d = Msg::default();
    d.string(1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Msg::default();
    info.string(1, doc["info"]["title"].as_str().unwrap_or_default());
    info.string(2, doc["info"]["version"].as_str().unwrap_or_default());
    d.message(2, info);
    d.message(8, Msg::default());
    let mut defs = Msg::default();
    let empty = Map::new();
    for (k, v) in doc["definitions"].as_object().unwrap_or(&empty) {
        defs.message(1, named_schema(k, v));
    }
    d.message(9, defs);
    d.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_known_bytes() {
        // swagger="2.0" (field 1), info{title="T"} (2), paths{} (8), definitions{} (9)
        let doc = json!({"swagger": "2.0", "info": {"title": "T"}, "definitions": {}});
        assert_eq!(
            document(&doc),
            [
                0x0a, 3, b'2', b'.', b'0', 0x12, 3, 0x0a, 1, b'T', 0x42, 0, 0x4a, 0
            ]
        );
        // A schema with a required field, a type and a property.
        let s = schema(
            &json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}),
        );
        let mut want = vec![0x9a, 0x01, 1, b'a']; // required (19)
        want.extend([0xb2, 0x01, 8, 0x0a, 6]); // type (22): TypeItem{value}
        want.extend(b"object");
        want.extend([0xca, 0x01, 18, 0x0a, 16, 0x0a, 1, b'a', 0x12, 11]); // properties (25)
        want.extend([0xb2, 0x01, 8, 0x0a, 6]);
        want.extend(b"string");
        assert_eq!(s.0, want);
    }
}
