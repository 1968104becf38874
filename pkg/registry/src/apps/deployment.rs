//! Deployments (upstream `pkg/registry/apps/deployment` and the apps/v1 defaults).

use crate::core::pod::{default_pod_spec, validate_pod_spec};
use crate::typed::{Typed, immutable, info};
use apimachinery::Cause;
use apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

/// Selector present, non-empty, and matching the template's labels; template valid.
pub fn validate_selector_and_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    restart_always: bool,
) -> Vec<Cause> {
    let mut c = Vec::new();
    let sel_json = serde_json::to_value(selector).unwrap_or_default();
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty());
    if empty {
        c.push(Cause::invalid(
            "spec.selector",
            &sel_json,
            "empty selector is invalid for deployment",
        ));
    }
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    match Selector::from_label_selector(Some(&sel_json)) {
        Ok(s) if !empty && !s.matches(&labels) => {
            c.push(Cause::invalid(
                "spec.template.metadata.labels",
                &json!(labels),
                "`selector` does not match template `labels`",
            ));
        }
        Err(e) => c.push(Cause::invalid("spec.selector", &sel_json, &e)),
        _ => {}
    }
    match &template.spec {
        Some(s) => {
            c.extend(validate_pod_spec("spec.template.spec", s));
            if restart_always && s.restart_policy.as_deref().is_some_and(|r| r != "Always") {
                c.push(Cause::not_supported(
                    "spec.template.spec.restartPolicy",
                    &json!(s.restart_policy),
                    &["Always"],
                ));
            }
        }
        None => c.push(Cause::required("spec.template.spec", "")),
    }
    c
}

fn pct_or_int_ok(v: &IntOrString) -> bool {
    match v {
        IntOrString::Int(i) => *i >= 0,
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .is_some_and(|p| (0..=100).contains(&p)),
    }
}

fn is_zero(v: &IntOrString) -> bool {
    matches!(v, IntOrString::Int(0)) || matches!(v, IntOrString::String(s) if s == "0%")
}

pub fn strategy() -> Typed<Deployment> {
    let mut i = info(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        "deployments",
    );
    i.short_names = vec!["deploy".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["scale".into(), "status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    // Upstream's deployment status strategy resets labels as well as spec.
    t.status_metadata = apiserver::registry::strategy::StatusMetadata::Annotations;
    t.default = |d: &mut Deployment| {
        let Some(spec) = d.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let kind = strategy
            .type_
            .get_or_insert_with(|| "RollingUpdate".into())
            .clone();
        if kind == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        if let Some(ps) = spec.template.spec.as_mut() {
            default_pod_spec(ps);
        }
    };
    t.validate = |d: &Deployment| {
        let Some(spec) = &d.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = validate_selector_and_template(&spec.selector, &spec.template, true);
        c.extend(apimachinery::validation::non_negative(
            "spec.replicas",
            spec.replicas,
        ));
        if let Some(s) = &spec.strategy {
            match s.type_.as_deref() {
                Some("Recreate") if s.rolling_update.is_some() => {
                    c.push(Cause::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
                Some("RollingUpdate" | "Recreate") | None => {}
                Some(other) => c.push(Cause::not_supported(
                    "spec.strategy.type",
                    &json!(other),
                    &["Recreate", "RollingUpdate"],
                )),
            }
            if let Some(ru) = &s.rolling_update {
                for (f, v) in [
                    ("maxUnavailable", &ru.max_unavailable),
                    ("maxSurge", &ru.max_surge),
                ] {
                    if let Some(v) = v
                        && !pct_or_int_ok(v)
                    {
                        c.push(Cause::invalid(
                            &format!("spec.strategy.rollingUpdate.{f}"),
                            &json!(v),
                            "must be a non-negative integer or a percentage between 0% and 100%",
                        ));
                    }
                }
                if let (Some(u), Some(s)) = (&ru.max_unavailable, &ru.max_surge)
                    && is_zero(u)
                    && is_zero(s)
                {
                    c.push(Cause::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        &json!(u),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        }
        if let (Some(p), m) = (
            spec.progress_deadline_seconds,
            spec.min_ready_seconds.unwrap_or(0),
        ) && p <= m
        {
            c.push(Cause::invalid(
                "spec.progressDeadlineSeconds",
                &json!(p),
                "must be greater than minReadySeconds",
            ));
        }
        c
    };
    t.validate_update = |n, o| {
        let sel = |d: &Deployment| {
            serde_json::to_value(d.spec.as_ref().map(|s| &s.selector)).unwrap_or_default()
        };
        immutable("spec.selector", &sel(n), &sel(o))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        [
            crate::typed::col("Ready", "string", "Number of the pod with ready state", 0),
            crate::typed::col(
                "Up-to-date",
                "string",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            crate::typed::col(
                "Available",
                "string",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            crate::typed::col("Age", "string", "", 0),
        ]
        .into_iter()
        .chain(workload_wide_columns())
        .collect()
    });
    t.row = |o| {
        let st = &o["status"];
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        let mut row = vec![
            json!(format!(
                "{}/{}",
                n(&st["readyReplicas"]),
                n(&o["spec"]["replicas"])
            )),
            json!(n(&st["updatedReplicas"])),
            json!(n(&st["availableReplicas"])),
            crate::typed::age_cell(o),
        ];
        row.extend(workload_wide_cells(o));
        row
    };
    t
}

/// The `-o wide` columns of workloads: CONTAINERS, IMAGES, SELECTOR.
pub fn workload_wide_columns() -> Vec<apiserver::registry::strategy::Column> {
    vec![
        crate::typed::col(
            "Containers",
            "string",
            "Names of each container in the template.",
            1,
        ),
        crate::typed::col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
            1,
        ),
        crate::typed::col(
            "Selector",
            "string",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            1,
        ),
    ]
}

/// CONTAINERS, IMAGES, SELECTOR cells of `-o wide` for workloads.
pub fn workload_wide_cells(o: &Value) -> Vec<Value> {
    let cs: Vec<&Value> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    let sel = apimachinery::labels::format_label_selector(&o["spec"]["selector"]);
    let sel = if sel.is_empty() {
        "<none>".to_string()
    } else {
        sel
    };
    vec![json!(names.join(",")), json!(images.join(",")), json!(sel)]
}
