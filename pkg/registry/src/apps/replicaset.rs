//! ReplicaSets (upstream `pkg/registry/apps/replicaset`).

use crate::apps::deployment::{validate_selector_and_template, workload_wide_cells};
use crate::core::pod::default_pod_spec;
use crate::typed::{Typed, immutable, info};
use apimachinery::Cause;
use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::{Value, json};

pub fn strategy() -> Typed<ReplicaSet> {
    let mut i = info(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        "replicasets",
    );
    i.short_names = vec!["rs".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["scale".into(), "status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |r: &mut ReplicaSet| {
        let Some(spec) = r.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        if let Some(ps) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
            default_pod_spec(ps);
        }
    };
    t.validate = |r: &ReplicaSet| {
        let Some(spec) = &r.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        match &spec.template {
            Some(tpl) => c.extend(validate_selector_and_template(&spec.selector, tpl, true)),
            None if spec.replicas.unwrap_or(1) > 0 => c.push(Cause::required("spec.template", "")),
            None => {}
        }
        c.extend(apimachinery::validation::non_negative(
            "spec.replicas",
            spec.replicas,
        ));
        c
    };
    t.validate_update = |n, o| {
        let sel = |r: &ReplicaSet| {
            serde_json::to_value(r.spec.as_ref().map(|s| &s.selector)).unwrap_or_default()
        };
        immutable("spec.selector", &sel(n), &sel(o))
            .into_iter()
            .collect()
    };
    t.fields = |o| {
        [(
            "status.replicas".to_string(),
            o["status"]["replicas"].as_i64().unwrap_or(0).to_string(),
        )]
        .into_iter()
        .collect()
    };
    t.supported_fields = &["status.replicas"];
    t.columns = Some(|| {
        [
            crate::typed::col("Desired", "integer", "Number of desired pods.", 0),
            crate::typed::col("Current", "integer", "Number of actual replicas.", 0),
            crate::typed::col(
                "Ready",
                "integer",
                "The number of ready replicas for this replica set.",
                0,
            ),
            crate::typed::col("Age", "string", "", 0),
        ]
        .into_iter()
        .chain(crate::apps::deployment::workload_wide_columns())
        .collect()
    });
    t.row = |o| {
        let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
        let mut row = vec![
            n(&o["spec"]["replicas"]),
            n(&o["status"]["replicas"]),
            n(&o["status"]["readyReplicas"]),
            crate::typed::age_cell(o),
        ];
        row.extend(workload_wide_cells(o));
        row
    };
    t
}
