//! `kubectl explain`'s OpenAPI v3 renderer. Upstream twin: `kubectl/pkg/explain/v2`, whose
//! `plaintext` Go template this follows step by step (the same traversal of `$ref`,
//! `allOf`, `items` and `additionalProperties`, the same cycle guard, word wrapping and
//! type hints), so the output is upstream's byte for byte.

use cli_runtime::printers::gotemplate::truthy;
use serde_json::Value;
use std::collections::BTreeSet;

/// The resource being explained, as upstream's `schema.GroupVersionResource`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl Gvr {
    /// `apps/v1, Resource=deployments` (`/v1, Resource=pods` for the core group).
    pub fn display(&self) -> String {
        format!(
            "{}/{}, Resource={}",
            self.group, self.version, self.resource
        )
    }
}

/// What rendering produced: the text written before any failure, and the failure.
#[derive(Debug, PartialEq)]
pub struct Rendered {
    pub out: String,
    pub error: Option<String>,
}

/// Renders `gvr` (and `field_path` within it) from its group version's OpenAPI v3 document.
pub fn render(doc: &Value, gvr: &Gvr, field_path: &[String], recursive: bool) -> Rendered {
    let prefix = if gvr.group.is_empty() {
        "/api".to_string()
    } else {
        format!("/apis/{}", gvr.group)
    };
    let (v, r) = (&gvr.version, &gvr.resource);
    let searches = [
        format!("{prefix}/{v}/{r}"),
        format!("{prefix}/{v}/{r}/{{name}}"),
        format!("{prefix}/{v}/namespaces/{{namespace}}/{r}"),
        format!("{prefix}/{v}/namespaces/{{namespace}}/{r}/{{name}}"),
    ];
    // As the template: every search path that exists assigns the GVK of its first
    // operation that has one (or of its last operation, when none has), later ones win.
    let mut gvk = &Value::Null;
    for path in &searches {
        let element = &doc["paths"][path.as_str()];
        if !truthy(element) {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            let op = &element[method];
            if !truthy(op) {
                continue;
            }
            gvk = &op["x-kubernetes-group-version-kind"];
            if truthy(gvk) {
                break;
            }
        }
    }
    if !truthy(gvk) {
        return Rendered {
            out: String::new(),
            error: Some(format!(
                "error: GVR ({}) not found in OpenAPI schema",
                gvr.display()
            )),
        };
    }
    let mut out = String::new();
    if truthy(&gvk["group"]) {
        out += &format!("GROUP:      {}\n", go_string(&gvk["group"]));
    }
    out += &format!("KIND:       {}\n", go_string(&gvk["kind"]));
    out += &format!("VERSION:    {}\n", go_string(&gvk["version"]));
    out.push('\n');
    let r = Renderer { doc, recursive };
    let mut schemas: Vec<(&String, &Value)> = doc["components"]["schemas"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    schemas.sort_by(|a, b| a.0.cmp(b.0));
    let found = schemas.into_iter().find(|(_, s)| {
        s["x-kubernetes-group-version-kind"]
            .as_array()
            .is_some_and(|l| l.contains(gvk))
    });
    let Some((_, schema)) = found else {
        return Rendered {
            out,
            error: Some(format!(
                "error: GVK {} not found in OpenAPI schema",
                go_map(gvk)
            )),
        };
    };
    let body = r.output(schema, &BTreeSet::new(), field_path);
    if body.is_empty() {
        let field = field_path.last().map(String::as_str).unwrap_or_default();
        return Rendered {
            out,
            error: Some(format!("error: field \"{field}\" does not exist")),
        };
    }
    out += &body;
    out.push('\n');
    Rendered { out, error: None }
}

struct Renderer<'a> {
    doc: &'a Value,
    recursive: bool,
}

impl<'a> Renderer<'a> {
    /// A `#/components/schemas/...` reference, `None` when it does not resolve.
    fn resolve_ref(&self, reference: &Value) -> Option<&'a Value> {
        let fragment = reference.as_str()?.strip_prefix('#')?;
        let mut cur = self.doc;
        for k in fragment.split('/').filter(|k| !k.is_empty()) {
            cur = cur.get(k).filter(|v| v.is_object())?;
        }
        Some(cur)
    }

    /// `or (resolveRef $ref) $schema`.
    fn resolved(&self, schema: &'a Value) -> &'a Value {
        self.resolve_ref(&schema["$ref"])
            .filter(|v| truthy(v))
            .unwrap_or(schema)
    }

    /// Follows `path` and prints the description and field list where it ends; empty
    /// when the path does not exist.
    fn output(&self, schema: &'a Value, history: &BTreeSet<String>, path: &[String]) -> String {
        let reference = schema["$ref"].as_str().unwrap_or_default();
        let mut next_history = history.clone();
        next_history.insert(reference.to_string());
        let resolved = self.resolved(schema);
        if path.is_empty() {
            let description = self.description(resolved);
            let description = if description.is_empty() {
                "<empty>".to_string()
            } else {
                description
            };
            let mut out = format!("DESCRIPTION:\n{}\n", indent(4, &wrap(&description, 76)));
            let fields = self.field_list(resolved, 1, &BTreeSet::new());
            if !fields.is_empty() {
                out += "FIELDS:\n";
                out += &fields;
            }
            return out;
        }
        if !reference.is_empty() && history.contains(reference) {
            return String::new(); // a cycle
        }
        let props = &resolved["properties"];
        if truthy(props) && truthy(&props[path[0].as_str()]) {
            let sub = &props[path[0].as_str()];
            let mut out = String::new();
            if path.len() == 1 {
                out += &format!("FIELD: {} <{}>\n", path[0], self.type_guess(sub));
                out += &self.extract_enum(sub, true, -1, 0);
                out += "\n\n";
            }
            return out + &self.output(sub, &BTreeSet::new(), &path[1..]);
        }
        if truthy(&resolved["items"]) {
            return self.output(&resolved["items"], &next_history, path);
        }
        let additional = &resolved["additionalProperties"];
        if additional.is_object() && truthy(additional) {
            return self.output(additional, &next_history, path);
        }
        for sub in resolved["allOf"].as_array().into_iter().flatten() {
            let out = self.output(sub, &next_history, path);
            if !out.is_empty() {
                return out;
            }
        }
        String::new()
    }

    /// The schema's description and those of its `allOf`, `items` and map values.
    fn description(&self, schema: &'a Value) -> String {
        let s = self.resolved(schema);
        if !truthy(s) {
            return String::new();
        }
        let mut out = String::new();
        if truthy(&s["description"]) {
            out += &go_string(&s["description"]);
            out.push('\n');
        }
        for sub in s["allOf"].as_array().into_iter().flatten() {
            out += &self.description(sub);
        }
        if truthy(&s["items"]) {
            out += &self.description(&s["items"]);
        }
        let additional = &s["additionalProperties"];
        if additional.is_object() && truthy(additional) {
            out += &self.description(additional);
        }
        out
    }

    /// Each property (sorted, as Go ranges over a map), recursing when `--recursive`.
    fn field_list(&self, schema: &'a Value, level: usize, history: &BTreeSet<String>) -> String {
        let reference = schema["$ref"].as_str().unwrap_or_default();
        if !reference.is_empty() && history.contains(reference) {
            return String::new();
        }
        let mut next_history = history.clone();
        next_history.insert(reference.to_string());
        let resolved = self.resolved(schema);
        let mut out = String::new();
        let mut props: Vec<(&String, &Value)> = resolved["properties"]
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        props.sort_by(|a, b| a.0.cmp(b.0));
        for (name, sub) in props {
            out += &self.field_detail(name, resolved, level);
            if self.recursive {
                out += &self.field_list(sub, level + 1, &next_history);
            }
        }
        for sub in resolved["allOf"].as_array().into_iter().flatten() {
            out += &self.field_list(sub, level, &next_history);
        }
        if truthy(&resolved["items"]) {
            out += &self.field_list(&resolved["items"], level, &next_history);
        }
        let additional = &resolved["additionalProperties"];
        if additional.is_object() && truthy(additional) {
            out += &self.field_list(additional, level, &next_history);
        }
        out
    }

    /// `name\t<type> -required-` and, unless recursive, the wrapped description.
    fn field_detail(&self, name: &str, schema: &'a Value, level: usize) -> String {
        let pad = level * 2;
        let field = &schema["properties"][name];
        let mut out = format!("{}\t<{}>", indent(pad, name), self.type_guess(field));
        if schema["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == name))
        {
            out += " -required-";
        }
        out += &self.extract_enum(field, false, 4, pad);
        out.push('\n');
        if !self.recursive {
            let description = match &field["description"] {
                d if truthy(d) => go_string(d),
                _ => "<no description>".to_string(),
            };
            out += &indent(pad + 2, &wrap(&description, 78 - pad));
            out += "\n\n";
        }
        out
    }

    /// The type hint: `string`, `Object`, `[]Container`, `map[string]string`, `PodSpec`.
    fn type_guess(&self, schema: &'a Value) -> String {
        if truthy(&schema["items"]) {
            return format!("[]{}", self.type_guess(&schema["items"]));
        }
        let additional = &schema["additionalProperties"];
        if additional.is_object() && truthy(additional) {
            return format!("map[string]{}", self.type_guess(additional));
        }
        if let Some(all) = schema["allOf"].as_array()
            && all.len() == 1
            && !truthy(&schema["properties"])
        {
            return self.type_guess(&all[0]);
        }
        if truthy(&schema["$ref"]) {
            let reference = go_string(&schema["$ref"]);
            let target = self.resolve_ref(&schema["$ref"]).filter(|v| truthy(v));
            let ty = target.map(|t| &t["type"]).unwrap_or(&Value::Null);
            if !truthy(ty) || ty == "object" {
                let name = reference.rsplit('/').next().unwrap_or_default();
                let short = name.rsplit('.').next().unwrap_or_default();
                return if short.is_empty() { "Object" } else { short }.to_string();
            }
            return go_string(ty);
        }
        match &schema["type"] {
            t if t == "object" => "Object".to_string(),
            t if truthy(t) => go_string(t),
            _ => "Object".to_string(),
        }
    }

    /// `ENUM:` lines under a field's heading, or `enum: a, b, c, d, ....` under a field.
    fn extract_enum(&self, schema: &Value, long: bool, limit: i64, pad: usize) -> String {
        let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) else {
            return String::new();
        };
        let mut out = if long {
            "ENUM:".to_string()
        } else {
            format!("\n{}enum: ", " ".repeat(pad))
        };
        for (i, v) in values.iter().enumerate() {
            if limit > -1 && i as i64 >= limit {
                out += ", ....";
                break;
            }
            if i > 0 && !long {
                out += ", ";
            } else if long {
                out += "\n    ";
            }
            if v == "" {
                out += "\"\"";
            } else {
                out += &go_string(v);
            }
        }
        out
    }
}

/// How a template prints a decoded JSON value (`{{ . }}`).
fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(_) => go_map(v),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => go_float(f),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
    }
}

/// `%v` of a float64 as Go's `strconv.FormatFloat(f, 'g', -1, 64)` for typical values.
fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// `%v` of a `map[string]any`: `map[group:apps kind:Deployment version:v1]`.
fn go_map(v: &Value) -> String {
    let mut entries: Vec<(&String, &Value)> = v
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let inner: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_string(v)))
        .collect();
    format!("map[{}]", inner.join(" "))
}

/// The template's `indent`: a pad before the text and after every newline.
fn indent(amount: usize, s: &str) -> String {
    let pad = " ".repeat(amount);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// Word wrapping as `github.com/mitchellh/go-wordwrap` v1.0.1 (`WrapString`), which
/// kubectl's `term.NewWordWrapWriter` uses: breaks only at white space, counts runes,
/// and lets a word longer than the limit run past it.
pub fn wrap(s: &str, limit: usize) -> String {
    let mut buf = String::with_capacity(s.len());
    let (mut word, mut space) = (String::new(), String::new());
    let (mut current, mut word_len, mut space_len) = (0usize, 0usize, 0usize);
    for c in s.chars() {
        if c == '\n' {
            if word.is_empty() {
                if current + space_len <= limit {
                    buf += &space;
                }
            } else {
                buf += &space;
                buf += &word;
                word.clear();
                word_len = 0;
            }
            space.clear();
            space_len = 0;
            buf.push(c);
            current = 0;
        } else if c.is_whitespace() && c != '\u{a0}' {
            if space.is_empty() || !word.is_empty() {
                current += space_len + word_len;
                buf += &space;
                buf += &word;
                space.clear();
                space_len = 0;
                word.clear();
                word_len = 0;
            }
            space.push(c);
            space_len += 1;
        } else {
            word.push(c);
            word_len += 1;
            if current + word_len + space_len > limit && word_len < limit {
                buf.push('\n');
                current = 0;
                space.clear();
                space_len = 0;
            }
        }
    }
    if word.is_empty() {
        if current + space_len <= limit {
            buf += &space;
        }
    } else {
        buf += &space;
        buf += &word;
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "paths": {
                "/apis/apps/v1/namespaces/{namespace}/deployments": {
                    "get": {"x-kubernetes-group-version-kind": {"group": "apps", "kind": "Deployment", "version": "v1"}}
                }
            },
            "components": {"schemas": {
                "io.k8s.api.apps.v1.Deployment": {
                    "description": "Deployment enables declarative updates for Pods and ReplicaSets.",
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema."},
                        "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}], "default": {}, "description": "Specification of the desired behavior."},
                        "kind": {"type": "string"}
                    },
                    "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]
                },
                "io.k8s.api.apps.v1.DeploymentSpec": {
                    "description": "DeploymentSpec is the specification of the desired behavior of the Deployment.",
                    "type": "object",
                    "required": ["selector"],
                    "properties": {
                        "replicas": {"type": "integer", "format": "int32"},
                        "selector": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]},
                        "strategy": {"type": "string", "enum": ["", "Recreate", "RollingUpdate", "A", "B"]},
                        "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
                        "ports": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}}
                    }
                }
            }}
        })
    }

    fn gvr() -> Gvr {
        Gvr {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
        }
    }

    #[test]
    fn renders_a_kind_with_its_fields() {
        let r = render(&doc(), &gvr(), &[], false);
        assert_eq!(r.error, None);
        assert_eq!(
            r.out,
            "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nDESCRIPTION:\n    \
             Deployment enables declarative updates for Pods and ReplicaSets.\n    \nFIELDS:\n  \
             apiVersion\t<string>\n    APIVersion defines the versioned schema.\n\n  \
             kind\t<string>\n    <no description>\n\n  \
             spec\t<DeploymentSpec>\n    Specification of the desired behavior.\n\n\n"
        );
    }

    #[test]
    fn renders_a_field_with_types_enums_and_both_descriptions() {
        let r = render(&doc(), &gvr(), &["spec".to_string()], false);
        assert_eq!(r.error, None);
        let want = "FIELD: spec <DeploymentSpec>\n\n\nDESCRIPTION:\n    Specification of the desired behavior.\n    \
                    DeploymentSpec is the specification of the desired behavior of the\n    Deployment.\n    \nFIELDS:\n";
        assert!(r.out.contains(want), "{}", r.out);
        assert!(r.out.contains("  labels\t<map[string]string>\n"));
        assert!(r.out.contains("  ports\t<[]DeploymentSpec>\n"));
        assert!(r.out.contains("  selector\t<DeploymentSpec> -required-\n"));
        assert!(
            r.out
                .contains("  strategy\t<string>\n  enum: \"\", Recreate, RollingUpdate, A, ....\n")
        );
        let e = render(&doc(), &gvr(), &["spec".into(), "strategy".into()], false);
        assert!(
            e.out
                .contains("FIELD: strategy <string>\nENUM:\n    \"\"\n    Recreate\n"),
            "{}",
            e.out
        );
    }

    #[test]
    fn recursive_lists_nested_fields_once_per_cycle() {
        let r = render(&doc(), &gvr(), &[], true);
        assert!(
            r.out
                .contains("  spec\t<DeploymentSpec>\n    labels\t<map[string]string>\n"),
            "{}",
            r.out
        );
        // DeploymentSpec refers to itself: expanded once, not forever.
        assert_eq!(r.out.matches("replicas\t").count(), 1, "{}", r.out);
    }

    #[test]
    fn unknown_fields_and_resources_are_errors() {
        let r = render(&doc(), &gvr(), &["nope".into()], false);
        assert_eq!(
            r.error.as_deref(),
            Some("error: field \"nope\" does not exist")
        );
        assert!(r.out.starts_with("GROUP:      apps\n"));
        let other = Gvr {
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
        };
        let r = render(&doc(), &other, &[], false);
        assert_eq!(
            r.error.as_deref(),
            Some("error: GVR (/v1, Resource=pods) not found in OpenAPI schema")
        );
    }

    #[test]
    fn wraps_as_go_wordwrap() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("aaa  bbb", 3), "aaa\nbbb");
        assert_eq!(wrap("averylongword x", 4), "averylongword\nx");
        assert_eq!(wrap("a\n  b", 10), "a\n  b");
        assert_eq!(wrap("trailing  ", 20), "trailing  ");
    }
}
