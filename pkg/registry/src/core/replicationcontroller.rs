//! ReplicationControllers (upstream `pkg/registry/core/replicationcontroller`).

use crate::apps::deployment::validate_selector_and_template;
use crate::core::pod::default_pod_spec;
use crate::printers::{age, cols, containers_images, int, selector};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub fn strategy() -> Typed<ReplicationController> {
    let mut i = info(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
        "controllers",
    );
    i.short_names = vec!["rc".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["scale".into(), "status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    // The selector and the controller's labels default to the template's labels.
    t.default = |rc: &mut ReplicationController| {
        let labels = rc
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        let Some(spec) = rc.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        if let Some(l) = labels.filter(|l| !l.is_empty()) {
            if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
                spec.selector = Some(l.clone());
            }
            if rc.metadata.labels.as_ref().is_none_or(|m| m.is_empty()) {
                rc.metadata.labels = Some(l);
            }
        }
        if let Some(ps) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
            default_pod_spec(ps);
        }
    };
    t.validate = |rc: &ReplicationController| {
        let Some(spec) = &rc.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        c.extend(apimachinery::validation::non_negative(
            "spec.replicas",
            spec.replicas,
        ));
        match &spec.template {
            Some(tpl) => {
                let sel = LabelSelector {
                    match_labels: spec.selector.clone(),
                    ..Default::default()
                };
                c.extend(validate_selector_and_template(&sel, tpl, true));
            }
            None => c.push(Cause::required("spec.template", "")),
        }
        c
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
        cols(&[
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ])
    });
    t.row = |o| {
        let [c, i] = containers_images(&o["spec"]["template"]["spec"]);
        vec![
            int(&o["spec"]["replicas"]),
            int(&o["status"]["replicas"]),
            int(&o["status"]["readyReplicas"]),
            age(o),
            c,
            i,
            selector(&o["spec"]["selector"]),
        ]
    };
    t
}
