//! IngressClasses (upstream `pkg/registry/networking/ingressclass`).

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::json;

pub fn strategy() -> Typed<IngressClass> {
    let mut t = simple(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
    );
    t.tracks_generation = true;
    // Upstream `SetDefaults_IngressClass`: parameters without a scope are cluster-scoped.
    t.default = |c: &mut IngressClass| {
        if let Some(p) = c.spec.as_mut().and_then(|s| s.parameters.as_mut())
            && p.scope.is_none()
        {
            p.scope = Some("Cluster".into());
        }
    };
    t.validate = |c: &IngressClass| match c.spec.as_ref().and_then(|s| s.controller.as_deref()) {
        Some(ctl) if !ctl.contains('/') || ctl.len() > 250 => vec![Cause::invalid(
            "spec.controller",
            &json!(ctl),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )],
        _ => Vec::new(),
    };
    t.validate_update = |n, o| {
        let ctl = |c: &IngressClass| json!(c.spec.as_ref().and_then(|s| s.controller.clone()));
        crate::typed::immutable("spec.controller", &ctl(n), &ctl(o))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("Controller", "string", 0),
            ("Parameters", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let p = &o["spec"]["parameters"];
        let params = if p.is_object() {
            let g = p["apiGroup"].as_str().unwrap_or("k8s.io");
            format!(
                "{}.{g}/{}",
                p["kind"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default()
            )
        } else {
            "<none>".into()
        };
        vec![o["spec"]["controller"].clone(), json!(params), age(o)]
    };
    t
}
