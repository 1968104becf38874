//! Output formats of `-o`: tables from the server, YAML, JSON, names, JSONPath, Go
//! templates and custom columns. Upstream twin: `cli-runtime/pkg/printers`.

pub mod custom_columns;
pub mod gotemplate;
pub mod jsonpath;
pub mod table;
pub mod tabwriter;
pub mod yaml;

use serde_json::Value;

/// `-o json`: Go's `json.MarshalIndent(obj, "", "    ")` — sorted keys, four spaces,
/// and `<`, `>`, `&`, U+2028/9 escaped as Go's encoder does.
pub fn to_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("a JSON value serializes");
    let mut out = go_escape(&String::from_utf8(buf).expect("serde_json writes UTF-8"));
    out.push('\n');
    out
}

/// Go's HTML-safe escaping, applied to already-serialized JSON (these characters only
/// ever occur inside strings there).
pub fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Compact JSON as Go's `json.Marshal` writes it.
pub fn to_compact_json(v: &Value) -> String {
    go_escape(&v.to_string())
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (go-yaml's floats): shortest digits,
/// exponent form below 1e-4 and from 1e6 on.
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and decimal exponent.
    let sci = format!("{f:e}"); // e.g. "1.5e6", "-2e-7"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// `-o name`: `kind.group/name` in lower case, `pod/x` for the core group.
pub fn name_line(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|av| av.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_indented_by_four_with_go_escapes() {
        assert_eq!(
            to_json(&json!({"b": [], "a": {"x": "<&>"}, "c": {}})),
            "{\n    \"a\": {\n        \"x\": \"\\u003c\\u0026\\u003e\"\n    },\n    \"b\": [],\n    \"c\": {}\n}\n"
        );
    }

    #[test]
    fn floats_format_as_go_does() {
        assert_eq!(go_format_float(0.5), "0.5");
        assert_eq!(go_format_float(1e21), "1e+21");
        assert_eq!(go_format_float(123456.0), "123456");
        assert_eq!(go_format_float(1234567.0), "1.234567e+06");
        assert_eq!(go_format_float(0.00001), "1e-05");
    }

    #[test]
    fn names_carry_the_group() {
        assert_eq!(
            name_line(&json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}})),
            "pod/p"
        );
        assert_eq!(
            name_line(
                &json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"}})
            ),
            "deployment.apps/d"
        );
    }
}
