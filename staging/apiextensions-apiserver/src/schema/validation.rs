//! Validation of a custom resource against its version's OpenAPI v3 schema (upstream
//! `apiserver/validation` over kube-openapi's validator), with upstream's field paths and
//! messages: `spec.replicas: Invalid value: "x": spec.replicas in body must be of type
//! integer: "x"`.

use apimachinery::Cause;
use serde_json::{Value, json};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match (want, v) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (w, v) => w == type_name(v),
    }
}

/// The value as upstream prints it inside a message (`"x"`, `5`, `map[...]`).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "object".into(),
        Value::Array(_) => "array".into(),
        other => other.to_string(),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Validates `v` at `path` against `schema`, appending causes.
pub fn validate(schema: &Value, v: &Value, path: &str, out: &mut Vec<Cause>) {
    let s = schema;
    let at = if path.is_empty() { "body" } else { path };
    if v.is_null() {
        if s["nullable"].as_bool() == Some(true) {
            return;
        }
        if s.get("type").is_some() {
            out.push(Cause::invalid(
                path,
                &Value::Null,
                &format!(
                    "{at} in body must be of type {}: \"null\"",
                    s["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(v.is_string() || type_matches("integer", v)) {
            out.push(Cause::invalid(
                path,
                v,
                &format!(
                    "{at} in body must be of type integer,string: \"{}\"",
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = s["type"].as_str()
        && !type_matches(t, v)
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{at} in body must be of type {t}: \"{}\"", type_name(v)),
        ));
        return;
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| {
                a.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| a.to_string())
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        out.push(Cause::not_supported(path, v, &refs));
    }
    match v {
        Value::Number(_) => validate_number(s, v, path, at, out),
        Value::String(text) => validate_string(s, text, v, path, at, out),
        Value::Array(items) => validate_array(s, items, path, at, out),
        Value::Object(map) => {
            for r in s["required"].as_array().into_iter().flatten() {
                if let Some(name) = r.as_str()
                    && !map.contains_key(name)
                {
                    out.push(Cause::required(&child(path, name), ""));
                }
            }
            let props = s["properties"].as_object();
            for (k, val) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate(ps, val, &child(path, k), out);
                } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    validate(ap, val, &child(path, k), out);
                }
            }
            if let Some(max) = s["maxProperties"].as_u64()
                && map.len() as u64 > max
            {
                out.push(Cause::too_many(path, map.len(), max as usize));
            }
            if let Some(min) = s["minProperties"].as_u64()
                && (map.len() as u64) < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{at} in body should have at least {min} properties"),
                ));
            }
        }
        _ => {}
    }
    for (key, all) in [("allOf", true), ("anyOf", false), ("oneOf", false)] {
        let Some(subs) = s[key].as_array() else {
            continue;
        };
        let results: Vec<Vec<Cause>> = subs
            .iter()
            .map(|sub| {
                let mut c = Vec::new();
                validate(sub, v, path, &mut c);
                c
            })
            .collect();
        let passing = results.iter().filter(|c| c.is_empty()).count();
        match key {
            _ if all => out.extend(results.into_iter().flatten()),
            "anyOf" if passing == 0 => out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body must be valid against at least one schema in anyOf"),
            )),
            "oneOf" if passing != 1 => out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body must validate one and only one schema (oneOf)"),
            )),
            _ => {}
        }
    }
    if let Some(not) = s.get("not") {
        let mut c = Vec::new();
        validate(not, v, path, &mut c);
        if c.is_empty() {
            out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body must not validate the schema (not)"),
            ));
        }
    }
}

fn validate_number(s: &Value, v: &Value, path: &str, at: &str, out: &mut Vec<Cause>) {
    let Some(n) = number(v) else { return };
    if let Some(max) = number(&s["maximum"]) {
        let excl = s["exclusiveMaximum"].as_bool() == Some(true);
        if n > max || (excl && n == max) {
            let rel = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body should be {rel} {}", fmt_num(max)),
            ));
        }
    }
    if let Some(min) = number(&s["minimum"]) {
        let excl = s["exclusiveMinimum"].as_bool() == Some(true);
        if n < min || (excl && n == min) {
            let rel = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body should be {rel} {}", fmt_num(min)),
            ));
        }
    }
    if let Some(m) = number(&s["multipleOf"])
        && m != 0.0
        && (n / m).fract() != 0.0
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{at} in body should be a multiple of {}", fmt_num(m)),
        ));
    }
    if s["format"] == "int32" && (n > i32::MAX as f64 || n < i32::MIN as f64) {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{at} in body must be of type int32: {}", shown(v)),
        ));
    }
}

fn validate_string(s: &Value, text: &str, v: &Value, path: &str, at: &str, out: &mut Vec<Cause>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s["maxLength"].as_u64()
        && len > max
    {
        out.push(Cause::too_long(path, max as usize));
    }
    if let Some(min) = s["minLength"].as_u64()
        && len < min
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{at} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = s["pattern"].as_str() {
        match regex::Regex::new(p) {
            Ok(re) if !re.is_match(text) => out.push(Cause::invalid(
                path,
                v,
                &format!("{at} in body should match '{p}'"),
            )),
            _ => {}
        }
    }
    if let Some(f) = s["format"].as_str()
        && !format_ok(f, text)
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{at} in body must be of type {f}: {}", shown(v)),
        ));
    }
}

/// The string formats upstream checks (others are accepted as documentation).
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4,
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        _ => true,
    }
}

fn validate_array(s: &Value, items: &[Value], path: &str, at: &str, out: &mut Vec<Cause>) {
    if let Some(max) = s["maxItems"].as_u64()
        && items.len() as u64 > max
    {
        out.push(Cause::too_many(path, items.len(), max as usize));
    }
    if let Some(min) = s["minItems"].as_u64()
        && (items.len() as u64) < min
    {
        out.push(Cause::invalid(
            path,
            &json!(items),
            &format!("{at} in body should have at least {min} items"),
        ));
    }
    let set = s["uniqueItems"].as_bool() == Some(true) || s["x-kubernetes-list-type"] == "set";
    if set {
        for (i, it) in items.iter().enumerate() {
            if items[..i].contains(it) {
                out.push(Cause::duplicate(&format!("{path}[{i}]"), it));
            }
        }
    }
    if s["x-kubernetes-list-type"] == "map"
        && let Some(keys) = s["x-kubernetes-list-map-keys"].as_array()
    {
        let key_of = |it: &Value| -> Vec<Value> {
            keys.iter()
                .map(|k| it[k.as_str().unwrap_or_default()].clone())
                .collect()
        };
        for (i, it) in items.iter().enumerate() {
            let k = key_of(it);
            if items[..i].iter().any(|o| key_of(o) == k) {
                out.push(Cause::duplicate(&format!("{path}[{i}]"), &json!(k)));
            }
        }
    }
    if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
        for (i, it) in items.iter().enumerate() {
            validate(item_schema, it, &format!("{path}[{i}]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schema: Value, v: Value) -> Vec<String> {
        let mut out = Vec::new();
        validate(&schema, &v, "", &mut out);
        out.iter().map(Cause::full_message).collect()
    }

    #[test]
    fn upstream_messages() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
        }}}});
        assert_eq!(
            check(schema.clone(), json!({"spec": {"size": "big"}})),
            [
                "spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            check(schema.clone(), json!({"spec": {"size": 20}})),
            ["spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10"]
        );
        assert_eq!(
            check(schema.clone(), json!({"spec": {}})),
            ["spec.size: Required value"]
        );
        assert_eq!(
            check(
                schema.clone(),
                json!({"spec": {"size": 1, "color": "pink"}})
            ),
            ["spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\""]
        );
        assert_eq!(
            check(schema.clone(), json!({"spec": {"size": 1, "name": "ABC"}})),
            ["spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"]
        );
        assert_eq!(
            check(
                schema.clone(),
                json!({"spec": {"size": 1, "tags": ["a", 1, "c"]}})
            ),
            [
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.tags[1]: Invalid value: 1: spec.tags[1] in body must be of type string: \"integer\""
            ]
        );
        assert!(
            check(
                schema,
                json!({"spec": {"size": 3, "color": "red", "name": "abc"}})
            )
            .is_empty()
        );
    }

    #[test]
    fn int_or_string_and_nullable() {
        let s = json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true}, "n": {"type": "string", "nullable": true}}});
        assert!(check(s.clone(), json!({"p": 5, "n": null})).is_empty());
        assert!(check(s.clone(), json!({"p": "25%"})).is_empty());
        assert_eq!(check(s, json!({"p": true})).len(), 1);
    }
}
