//! RuntimeClasses (upstream `pkg/registry/node/runtimeclass`).

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::json;

pub fn strategy() -> Typed<RuntimeClass> {
    let mut t = simple(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        false,
        &[],
    );
    t.validate = |r: &RuntimeClass| {
        apimachinery::validation::dns1123_label(&r.handler)
            .into_iter()
            .map(|e| Cause::invalid("handler", &json!(r.handler), &e))
            .collect()
    };
    t.validate_update = |n, o| {
        immutable("handler", &json!(n.handler), &json!(o.handler))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| cols(&[("Handler", "string", 0), ("Age", "string", 0)]));
    t.row = |o| vec![o["handler"].clone(), age(o)];
    t
}
