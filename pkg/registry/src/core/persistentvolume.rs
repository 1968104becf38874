//! PersistentVolumes (upstream `pkg/registry/core/persistentvolume`).

use crate::printers::{access_modes, age, cols, or_none};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::PersistentVolume;
use serde_json::{Value, json};

const RECLAIM: &[&str] = &["Delete", "Recycle", "Retain"];
const ACCESS: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// Access modes present and known; shared with claims.
pub fn validate_access_modes(field: &str, modes: Option<&Vec<String>>) -> Vec<Cause> {
    let modes = modes.cloned().unwrap_or_default();
    if modes.is_empty() {
        return vec![Cause::required(field, "at least 1 access mode is required")];
    }
    let mut c: Vec<Cause> = modes
        .iter()
        .filter(|m| !ACCESS.contains(&m.as_str()))
        .map(|m| Cause::not_supported(field, &json!(m), ACCESS))
        .collect();
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        c.push(Cause::forbidden(
            field,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    c
}

/// The volume source keys of a PV spec (everything that is not a common field).
fn volume_sources(spec: &Value) -> Vec<String> {
    const COMMON: &[&str] = &[
        "accessModes",
        "capacity",
        "claimRef",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeAttributesClassName",
        "volumeMode",
    ];
    spec.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !COMMON.contains(&k.as_str()) && !v.is_null())
        .map(|(k, _)| k.clone())
        .collect()
}

pub fn strategy() -> Typed<PersistentVolume> {
    let mut i = info(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        "persistentvolumes",
    );
    i.short_names = vec!["pv".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.default = |pv: &mut PersistentVolume| {
        if let Some(s) = pv.spec.as_mut() {
            s.persistent_volume_reclaim_policy
                .get_or_insert_with(|| "Retain".into());
            s.volume_mode.get_or_insert_with(|| "Filesystem".into());
        }
        pv.status
            .get_or_insert_with(Default::default)
            .phase
            .get_or_insert_with(|| "Pending".into());
    };
    t.validate = |pv: &PersistentVolume| {
        let Some(spec) = &pv.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = validate_access_modes("spec.accessModes", spec.access_modes.as_ref());
        if !spec
            .capacity
            .as_ref()
            .is_some_and(|m| m.contains_key("storage"))
        {
            c.push(Cause::required("spec.capacity", ""));
        }
        if let Some(p) = &spec.persistent_volume_reclaim_policy
            && !RECLAIM.contains(&p.as_str())
        {
            c.push(Cause::not_supported(
                "spec.persistentVolumeReclaimPolicy",
                &json!(p),
                RECLAIM,
            ));
        }
        match volume_sources(&serde_json::to_value(spec).unwrap_or_default()).len() {
            0 => c.push(Cause::required("spec", "must specify a volume type")),
            1 => {}
            _ => c.push(Cause::forbidden(
                "spec",
                "may not specify more than 1 volume type",
            )),
        }
        c
    };
    t.validate_update = |n, o| {
        let src = |pv: &PersistentVolume| {
            let spec = serde_json::to_value(&pv.spec).unwrap_or_default();
            volume_sources(&spec)
                .into_iter()
                .map(|k| (k.clone(), spec[&k].clone()))
                .collect::<Vec<_>>()
        };
        if src(n) != src(o) {
            return vec![Cause::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            )];
        }
        Vec::new()
    };
    t.columns = Some(|| {
        cols(&[
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Reason", "string", 0),
            ("Age", "string", 0),
            ("VolumeMode", "string", 1),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let claim = match (
            s["claimRef"]["namespace"].as_str(),
            s["claimRef"]["name"].as_str(),
        ) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            _ => String::new(),
        };
        vec![
            json!(s["capacity"]["storage"].as_str().unwrap_or_default()),
            access_modes(&s["accessModes"]),
            json!(
                s["persistentVolumeReclaimPolicy"]
                    .as_str()
                    .unwrap_or_default()
            ),
            json!(o["status"]["phase"].as_str().unwrap_or_default()),
            json!(claim),
            json!(s["storageClassName"].as_str().unwrap_or_default()),
            or_none(&s["volumeAttributesClassName"]),
            json!(o["status"]["reason"].as_str().unwrap_or_default()),
            age(o),
            or_none(&s["volumeMode"]),
        ]
    };
    t
}
