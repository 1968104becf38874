//! The JSONPath subset CRD printer columns use (upstream `client-go/util/jsonpath` as
//! `additionalPrinterColumns[].jsonPath`): `.a.b`, `[0]`, `[*]`, and equality filters
//! `[?(@.type=="Ready")]`.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter { path: Vec<String>, value: String },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(p);
    let mut steps = Vec::new();
    let mut rest = p.strip_prefix('$').unwrap_or(p);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs) = f.split_once("==")?;
                steps.push(Step::Filter {
                    path: lhs.trim().split('.').map(String::from).collect(),
                    value: rhs
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'')
                        .to_string(),
                });
            } else {
                steps.push(Step::Index(inner.parse().ok()?));
            }
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Every value the path selects (none for a missing field or a bad path).
pub fn find(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut cur = vec![obj.clone()];
    for step in &steps {
        let mut next = Vec::new();
        for v in &cur {
            match step {
                Step::Field(f) => next.extend(v.get(f).cloned()),
                Step::Index(i) => next.extend(v.get(*i).cloned()),
                Step::All => next.extend(v.as_array().cloned().unwrap_or_default()),
                Step::Filter { path, value } => {
                    for it in v.as_array().into_iter().flatten() {
                        let mut x = it;
                        for seg in path {
                            x = &x[seg.as_str()];
                        }
                        let s = x
                            .as_str()
                            .map(String::from)
                            .unwrap_or_else(|| x.to_string());
                        if &s == value {
                            next.push(it.clone());
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur.retain(|v| !v.is_null());
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_indexes_and_filters() {
        let o = json!({"spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(find(&o, ".spec.replicas"), [json!(3)]);
        assert_eq!(find(&o, ".spec.ports[1].port"), [json!(443)]);
        assert_eq!(find(&o, ".spec.ports[*].port"), [json!(80), json!(443)]);
        assert_eq!(
            find(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            [json!("True")]
        );
        assert!(find(&o, ".spec.missing").is_empty());
    }
}
