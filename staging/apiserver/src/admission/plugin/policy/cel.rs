//! CEL evaluation for admission policies (upstream `admission/plugin/cel`): expressions
//! compiled once and cached, evaluated against the request's variables (`object`,
//! `oldObject`, `request`, `params`, `namespaceObject`, `variables`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Compiled programs by expression text; policies are re-read on every request.
static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<cel::Program>>>> =
    LazyLock::new(Mutex::default);

/// Bound at most this many programs (a policy churn would otherwise grow it forever).
const MAX_CACHED: usize = 4096;

pub fn compile(expression: &str) -> Result<Arc<cel::Program>, String> {
    if let Some(p) = PROGRAMS.lock().unwrap().get(expression) {
        return Ok(p.clone());
    }
    let program = Arc::new(
        cel::Program::compile(expression).map_err(|e| format!("compilation failed: {e}"))?,
    );
    let mut cache = PROGRAMS.lock().unwrap();
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(expression.to_string(), program.clone());
    Ok(program)
}

/// A JSON value as CEL sees an object's field: integers are CEL `int` (upstream types
/// them from the schema's `integer`), so `object.spec.replicas % 2` and comparisons with
/// literals work; only integers past i64 become `uint`.
pub fn to_cel(v: &serde_json::Value) -> cel::Value {
    use serde_json::Value as J;
    match v {
        J::Null => cel::Value::Null,
        J::Bool(b) => cel::Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => cel::Value::String(Arc::new(s.clone())),
        J::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        J::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), to_cel(v)))
            .collect::<HashMap<String, cel::Value>>()
            .into(),
    }
}

/// The variables an expression sees.
#[derive(Clone, Default)]
pub struct Activation {
    pub vars: Vec<(&'static str, cel::Value)>,
}

impl Activation {
    pub fn bind(&mut self, name: &'static str, v: &serde_json::Value) {
        let value = to_cel(v);
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
    }

    pub fn bind_value(&mut self, name: &'static str, value: cel::Value) {
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
    }

    /// Evaluates `expression`; errors read as upstream's
    /// `expression '<expr>' resulted in error: <why>`.
    pub fn eval(&self, expression: &str) -> Result<cel::Value, String> {
        let program = compile(expression)
            .map_err(|e| format!("expression '{expression}' resulted in error: {e}"))?;
        let mut ctx = cel::Context::default();
        for (name, v) in &self.vars {
            ctx.add_variable_from_value(*name, v.clone());
        }
        program
            .execute(&ctx)
            .map_err(|e| format!("expression '{expression}' resulted in error: {e}"))
    }

    /// Evaluates a condition that must be a bool.
    pub fn eval_bool(&self, expression: &str) -> Result<bool, String> {
        match self.eval(expression)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{expression}' resulted in error: no such overload: expected bool, got {:?}",
                other.type_of()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_against_bound_objects() {
        let mut a = Activation::default();
        a.bind(
            "object",
            &json!({"spec": {"replicas": 3}, "metadata": {"labels": {"env": "prod"}}}),
        );
        a.bind("oldObject", &serde_json::Value::Null);
        assert!(a.eval_bool("object.spec.replicas <= 5").unwrap());
        assert!(
            a.eval_bool("has(object.metadata.labels) && object.metadata.labels.env == 'prod'")
                .unwrap()
        );
        assert!(a.eval_bool("oldObject == null").unwrap());
        // Integers are CEL ints: arithmetic with int literals works (upstream's
        // "should allow expressions to refer variables" policy).
        assert!(a.eval_bool("object.spec.replicas % 2 == 1").unwrap());
        assert!(a.eval_bool("object.spec.replicas > 1").unwrap());
        let e = a.eval_bool("object.spec.replicas").unwrap_err();
        assert!(
            e.starts_with("expression 'object.spec.replicas' resulted in error"),
            "{e}"
        );
        let e = a.eval("object.nope.deeper").unwrap_err();
        assert!(e.contains("resulted in error"), "{e}");
        assert!(
            a.eval("object.spec.(")
                .unwrap_err()
                .contains("compilation failed")
        );
    }
}
