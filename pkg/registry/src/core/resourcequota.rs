//! ResourceQuotas (upstream `pkg/registry/core/resourcequota`); usage is written to
//! `status` by the quota controller.

use crate::printers::{age, cols};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::ResourceQuota;
use serde_json::{Value, json};

const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

/// REQUEST / LIMIT cells: `name: used/hard` pairs, limits.* apart from the rest.
fn usage(o: &Value, limits: bool) -> Value {
    let hard = o["spec"]["hard"].as_object().cloned().unwrap_or_default();
    let used = &o["status"]["used"];
    let parts: Vec<String> = hard
        .iter()
        .filter(|(k, _)| k.starts_with("limits.") == limits)
        .map(|(k, v)| {
            format!(
                "{k}: {}/{}",
                used[k].as_str().unwrap_or("0"),
                v.as_str().unwrap_or_default()
            )
        })
        .collect();
    json!(parts.join(", "))
}

pub fn strategy() -> Typed<ResourceQuota> {
    let mut i = info(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        "resourcequotas",
    );
    i.short_names = vec!["quota".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.validate = |q: &ResourceQuota| {
        let mut c = Vec::new();
        let Some(spec) = &q.spec else { return c };
        for (i, s) in spec.scopes.iter().flatten().enumerate() {
            if !SCOPES.contains(&s.as_str()) {
                c.push(Cause::not_supported(
                    &format!("spec.scopes[{i}]"),
                    &json!(s),
                    SCOPES,
                ));
            }
        }
        for (k, v) in spec.hard.iter().flatten() {
            if v.0.starts_with('-') {
                c.push(Cause::invalid(
                    &format!("spec.hard[{k}]"),
                    &json!(v.0),
                    "must be greater than or equal to 0",
                ));
            }
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Age", "string", 0),
            ("Request", "string", 0),
            ("Limit", "string", 0),
        ])
    });
    t.row = |o| vec![age(o), usage(o, false), usage(o, true)];
    t
}
