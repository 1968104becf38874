//! `x-kubernetes-validations` CEL rules (upstream `apiserver/schema/cel`): each rule is
//! evaluated with `self` bound to the value at its schema node; transition rules (those
//! naming `oldSelf`) only on updates where the old value exists. A false result is a
//! field error carrying the rule's `message` (or `failed rule: <rule>`) and `reason`.

use apimachinery::Cause;
use serde_json::{Value, json};

fn rules(s: &Value) -> impl Iterator<Item = &Value> {
    s["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
}

fn is_transition(rule: &str) -> bool {
    rule.contains("oldSelf")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Rules that do not compile, reported against their schema location (CRD validation).
pub fn compile_errors(schema: &Value, path: &str, out: &mut Vec<Cause>) {
    for (i, r) in rules(schema).enumerate() {
        let rule = r["rule"].as_str().unwrap_or_default();
        let f = format!("{path}.x-kubernetes-validations[{i}].rule");
        if rule.trim().is_empty() {
            out.push(Cause::required(&f, ""));
        } else if let Err(e) = cel::Program::compile(rule) {
            out.push(Cause::invalid(
                &f,
                &json!(rule),
                &format!("compilation failed: {e}"),
            ));
        }
    }
    for (k, p) in schema["properties"].as_object().into_iter().flatten() {
        compile_errors(p, &format!("{path}.properties[{k}]"), out);
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        compile_errors(items, &format!("{path}.items"), out);
    }
    if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        compile_errors(ap, &format!("{path}.additionalProperties"), out);
    }
}

fn shown(v: &Value) -> Value {
    match v {
        Value::Object(_) => json!("object"),
        Value::Array(_) => json!("array"),
        other => other.clone(),
    }
}

fn failure(path: &str, v: &Value, r: &Value, detail: String) -> Cause {
    let field = match r["fieldPath"].as_str() {
        Some(fp) if !fp.is_empty() => format!("{path}{fp}"),
        _ => path.to_string(),
    };
    match r["reason"].as_str() {
        Some("FieldValueRequired") => Cause::required(&field, &detail),
        Some("FieldValueForbidden") => Cause::forbidden(&field, &detail),
        Some("FieldValueDuplicate") => Cause::duplicate(&field, &shown(v)),
        _ => Cause::invalid(&field, &shown(v), &detail),
    }
}

/// Evaluates one rule; Err carries the message of a failed or erroring rule.
fn check(r: &Value, v: &Value, old: Option<&Value>) -> Result<(), String> {
    let rule = r["rule"].as_str().unwrap_or_default();
    let program = cel::Program::compile(rule).map_err(|e| format!("compilation failed: {e}"))?;
    let mut ctx = cel::Context::default();
    // Integers as CEL ints, as the schema types them (`self.replicas % 2` works).
    let to_cel = apiserver::admission::plugin::policy::cel::to_cel;
    ctx.add_variable_from_value("self", to_cel(v));
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(o));
    }
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => Ok(()),
        Ok(cel::Value::Bool(false)) => Err(match r["message"].as_str() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => format!("failed rule: {rule}"),
        }),
        Ok(other) => Err(format!("rule did not evaluate to a bool: {other:?}")),
        Err(e) => Err(format!("{rule}: {e}")),
    }
}

/// Runs the rules of every schema node present in `v`. With `old`, only transition
/// rules run (and only where the old value exists); without it, only the others.
pub fn validate(schema: &Value, v: &Value, old: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    for r in rules(schema) {
        let transition = is_transition(r["rule"].as_str().unwrap_or_default());
        let old_here = match (transition, old) {
            (true, Some(o)) => Some(o),
            (false, None) => None,
            _ => continue,
        };
        if let Err(detail) = check(r, v, old_here) {
            out.push(failure(path, v, r, detail));
        }
    }
    match v {
        Value::Object(m) => {
            for (k, cv) in m {
                let sub = schema["properties"]
                    .get(k)
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    let old_child = old.and_then(|o| o.get(k));
                    if old.is_some() && old_child.is_none() {
                        continue;
                    }
                    validate(sub, cv, old_child, &child(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items").filter(|i| i.is_object()) {
                for (i, it) in items.iter().enumerate() {
                    // Transition rules of list items need a stable identity; only
                    // positional correlation is done here.
                    let old_it = old.and_then(|o| o.get(i));
                    if old.is_some() && old_it.is_none() {
                        continue;
                    }
                    validate(is, it, old_it, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                {"rule": "self.name.matches('^[a-z]+$')"},
                {"rule": "self.name == oldSelf.name", "message": "name is immutable"},
                {"rule": "self.maxReplicas % 2 == 1", "message": "maxReplicas must be odd"}
            ],
            "properties": {"minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}, "name": {"type": "string"},
                "ports": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0 && self < 65536"}]}}}}}})
    }

    fn run(v: Value, old: Option<Value>) -> Vec<String> {
        let mut out = Vec::new();
        validate(&schema(), &v, old.as_ref(), "", &mut out);
        out.iter().map(Cause::full_message).collect()
    }

    #[test]
    fn rules_messages_and_transitions() {
        let ok =
            json!({"spec": {"minReplicas": 1, "maxReplicas": 3, "name": "abc", "ports": [80]}});
        assert!(run(ok.clone(), None).is_empty());
        assert_eq!(
            run(
                json!({"spec": {"minReplicas": 5, "maxReplicas": 3, "name": "Abc", "ports": [0]}}),
                None
            ),
            [
                "spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
                "spec: Invalid value: \"object\": failed rule: self.name.matches('^[a-z]+$')",
                "spec.ports[0]: Invalid value: 0: failed rule: self > 0 && self < 65536",
            ]
        );
        let renamed =
            json!({"spec": {"minReplicas": 1, "maxReplicas": 3, "name": "xyz", "ports": [80]}});
        assert_eq!(
            run(renamed, Some(ok.clone())),
            ["spec: Invalid value: \"object\": name is immutable"]
        );
        assert!(run(ok.clone(), Some(ok)).is_empty());
    }

    #[test]
    fn compile_errors_are_located() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a <"}]}}});
        let mut out = Vec::new();
        compile_errors(&s, "spec.versions[0].schema.openAPIV3Schema", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].field,
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
        );
    }
}
