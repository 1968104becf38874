//! DaemonSets (upstream `pkg/registry/apps/daemonset` and the apps/v1 defaults).

use crate::apps::deployment::validate_selector_and_template;
use crate::core::pod::default_pod_spec;
use crate::printers::{age, cols, containers_images, int, map_string, selector};
use crate::typed::{Typed, immutable, info};
use apimachinery::Cause;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

pub fn strategy() -> Typed<DaemonSet> {
    let mut i = info("apps", "v1", "DaemonSet", "daemonsets", true, "daemonsets");
    i.short_names = vec!["ds".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |d: &mut DaemonSet| {
        let Some(spec) = d.spec.as_mut() else { return };
        let us = spec.update_strategy.get_or_insert_with(Default::default);
        let kind = us
            .type_
            .get_or_insert_with(|| "RollingUpdate".into())
            .clone();
        if kind == "RollingUpdate" {
            let ru = us.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.max_surge.get_or_insert(IntOrString::Int(0));
        }
        spec.revision_history_limit.get_or_insert(10);
        if let Some(ps) = spec.template.spec.as_mut() {
            default_pod_spec(ps);
        }
    };
    t.validate = |d: &DaemonSet| {
        let Some(spec) = &d.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = validate_selector_and_template(&spec.selector, &spec.template, true);
        if let Some(us) = &spec.update_strategy {
            match us.type_.as_deref() {
                Some("OnDelete" | "RollingUpdate") | None => {}
                Some(other) => c.push(Cause::not_supported(
                    "spec.updateStrategy.type",
                    &json!(other),
                    &["OnDelete", "RollingUpdate"],
                )),
            }
        }
        c
    };
    t.validate_update = |n, o| {
        let sel = |d: &DaemonSet| {
            serde_json::to_value(d.spec.as_ref().map(|s| &s.selector)).unwrap_or_default()
        };
        immutable("spec.selector", &sel(n), &sel(o))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ])
    });
    t.row = |o| {
        let st = &o["status"];
        let [c, i] = containers_images(&o["spec"]["template"]["spec"]);
        vec![
            int(&st["desiredNumberScheduled"]),
            int(&st["currentNumberScheduled"]),
            int(&st["numberReady"]),
            int(&st["updatedNumberScheduled"]),
            int(&st["numberAvailable"]),
            map_string(&o["spec"]["template"]["spec"]["nodeSelector"]),
            age(o),
            c,
            i,
            selector(&o["spec"]["selector"]),
        ]
    };
    t
}
