//! StatefulSets (upstream `pkg/registry/apps/statefulset` and the apps/v1 defaults).

use crate::apps::deployment::validate_selector_and_template;
use crate::core::pod::default_pod_spec;
use crate::printers::{age, cols, containers_images};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::apps::v1::StatefulSet;
use serde_json::{Value, json};

pub fn strategy() -> Typed<StatefulSet> {
    let mut i = info(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        "statefulsets",
    );
    i.short_names = vec!["sts".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["scale".into(), "status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |s: &mut StatefulSet| {
        let Some(spec) = s.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        spec.pod_management_policy
            .get_or_insert_with(|| "OrderedReady".into());
        let us = spec.update_strategy.get_or_insert_with(Default::default);
        let kind = us
            .type_
            .get_or_insert_with(|| "RollingUpdate".into())
            .clone();
        if kind == "RollingUpdate" {
            let ru = us.rolling_update.get_or_insert_with(Default::default);
            ru.partition.get_or_insert(0);
            if ru.max_unavailable.is_none() {
                ru.max_unavailable =
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1));
            }
        }
        spec.revision_history_limit.get_or_insert(10);
        let ret = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        ret.when_deleted.get_or_insert_with(|| "Retain".into());
        ret.when_scaled.get_or_insert_with(|| "Retain".into());
        for pvc in spec.volume_claim_templates.iter_mut().flatten() {
            if let Some(ps) = pvc.spec.as_mut() {
                ps.volume_mode.get_or_insert_with(|| "Filesystem".into());
            }
            pvc.status
                .get_or_insert_with(Default::default)
                .phase
                .get_or_insert_with(|| "Pending".into());
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            default_pod_spec(ps);
        }
    };
    t.validate = |s: &StatefulSet| {
        let Some(spec) = &s.spec else {
            return vec![Cause::required("spec", "")];
        };
        // Mounts may name the volumeClaimTemplates (each pod gets that claim as a volume).
        let mut template = spec.template.clone();
        if let Some(ps) = template.spec.as_mut() {
            let volumes = ps.volumes.get_or_insert_with(Vec::new);
            for t in spec.volume_claim_templates.iter().flatten() {
                let name = t.metadata.name.clone().unwrap_or_default();
                if !volumes.iter().any(|v| v.name == name) {
                    volumes.push(k8s_openapi::api::core::v1::Volume {
                        name: name.clone(),
                        persistent_volume_claim: Some(
                            k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                                claim_name: name,
                                read_only: None,
                            },
                        ),
                        ..Default::default()
                    });
                }
            }
        }
        let mut c = validate_selector_and_template(&spec.selector, &template, true);
        c.extend(apimachinery::validation::non_negative(
            "spec.replicas",
            spec.replicas,
        ));
        if let Some(p) = &spec.pod_management_policy
            && p != "OrderedReady"
            && p != "Parallel"
        {
            c.push(Cause::not_supported(
                "spec.podManagementPolicy",
                &json!(p),
                &["OrderedReady", "Parallel"],
            ));
        }
        if let Some(us) = &spec.update_strategy {
            match us.type_.as_deref() {
                Some("OnDelete") if us.rolling_update.is_some() => c.push(Cause::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    &json!(us.rolling_update),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )),
                Some("OnDelete" | "RollingUpdate") | None => {}
                Some(other) => c.push(Cause::not_supported(
                    "spec.updateStrategy.type",
                    &json!(other),
                    &["OnDelete", "RollingUpdate"],
                )),
            }
            c.extend(apimachinery::validation::non_negative(
                "spec.updateStrategy.rollingUpdate.partition",
                us.rolling_update.as_ref().and_then(|r| r.partition),
            ));
        }
        c
    };
    // Upstream: only replicas, ordinals, template, updateStrategy, minReadySeconds,
    // persistentVolumeClaimRetentionPolicy and revisionHistoryLimit may change.
    t.validate_update = |n, o| {
        let (Some(ns), Some(os)) = (&n.spec, &o.spec) else {
            return Vec::new();
        };
        let mut a = ns.clone();
        a.replicas = os.replicas;
        a.ordinals = os.ordinals.clone();
        a.template = os.template.clone();
        a.update_strategy = os.update_strategy.clone();
        a.min_ready_seconds = os.min_ready_seconds;
        a.persistent_volume_claim_retention_policy =
            os.persistent_volume_claim_retention_policy.clone();
        a.revision_history_limit = os.revision_history_limit;
        if serde_json::to_value(&a).ok() != serde_json::to_value(os).ok() {
            return vec![Cause::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )];
        }
        Vec::new()
    };
    t.columns = Some(|| {
        cols(&[
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ])
    });
    t.row = |o: &Value| {
        let [c, i] = containers_images(&o["spec"]["template"]["spec"]);
        vec![
            json!(format!(
                "{}/{}",
                o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                o["spec"]["replicas"].as_i64().unwrap_or(0)
            )),
            age(o),
            c,
            i,
        ]
    };
    t
}
