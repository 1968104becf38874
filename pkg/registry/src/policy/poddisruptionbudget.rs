//! PodDisruptionBudgets (upstream `pkg/registry/policy/poddisruptionbudget`).

use crate::printers::{age, cols, int};
use crate::typed::Typed;
use crate::typed::simple;
use apimachinery::Cause;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

fn check(field: &str, v: &IntOrString) -> Option<Cause> {
    let ok = match v {
        IntOrString::Int(i) => *i >= 0,
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .is_some_and(|p| (0..=100).contains(&p)),
    };
    (!ok).then(|| {
        Cause::invalid(
            field,
            &json!(v),
            "must be a non-negative integer or a percentage between 0% and 100%",
        )
    })
}

pub fn strategy() -> Typed<PodDisruptionBudget> {
    let mut t = simple(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
    );
    t.info.subresources = vec!["status".into()];
    t.tracks_generation = true;
    t.validate = |p: &PodDisruptionBudget| {
        let mut c = Vec::new();
        let Some(spec) = &p.spec else { return c };
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            c.push(Cause::invalid(
                "spec",
                &json!(spec),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        c.extend(
            spec.min_available
                .as_ref()
                .and_then(|v| check("spec.minAvailable", v)),
        );
        c.extend(
            spec.max_unavailable
                .as_ref()
                .and_then(|v| check("spec.maxUnavailable", v)),
        );
        match spec.unhealthy_pod_eviction_policy.as_deref() {
            Some("IfHealthyBudget" | "AlwaysAllow") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                &json!(other),
                &["AlwaysAllow", "IfHealthyBudget"],
            )),
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o: &Value| {
        let na = |v: &Value| match v {
            Value::Null => json!("N/A"),
            Value::Number(n) => json!(n.to_string()),
            other => other.clone(),
        };
        vec![
            na(&o["spec"]["minAvailable"]),
            na(&o["spec"]["maxUnavailable"]),
            int(&o["status"]["disruptionsAllowed"]),
            age(o),
        ]
    };
    t
}
