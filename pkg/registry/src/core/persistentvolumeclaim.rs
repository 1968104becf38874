//! PersistentVolumeClaims (upstream `pkg/registry/core/persistentvolumeclaim`).

use crate::core::persistentvolume::validate_access_modes;
use crate::printers::{access_modes, age, cols, or_none};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::json;

pub fn strategy() -> Typed<PersistentVolumeClaim> {
    let mut i = info(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        "persistentvolumeclaims",
    );
    i.short_names = vec!["pvc".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.default = |pvc: &mut PersistentVolumeClaim| {
        if let Some(s) = pvc.spec.as_mut() {
            s.volume_mode.get_or_insert_with(|| "Filesystem".into());
        }
        pvc.status
            .get_or_insert_with(Default::default)
            .phase
            .get_or_insert_with(|| "Pending".into());
    };
    t.validate = |pvc: &PersistentVolumeClaim| {
        let Some(spec) = &pvc.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = validate_access_modes("spec.accessModes", spec.access_modes.as_ref());
        let has_storage = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| r.contains_key("storage"));
        if !has_storage && spec.data_source.is_none() && spec.data_source_ref.is_none() {
            c.push(Cause::required("spec.resources[storage]", ""));
        }
        c
    };
    // As upstream: once created, only the requested size (expansion), the bound volume
    // name (when unset) and the volume attributes class may change.
    t.validate_update = |n, o| {
        let (Some(ns), Some(os)) = (&n.spec, &o.spec) else {
            return Vec::new();
        };
        let mut a = ns.clone();
        // Only a bound claim may ask for another size.
        let bound = o.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound {
            a.resources = os.resources.clone();
        }
        let mut causes = Vec::new();
        let storage = |r: Option<&k8s_openapi::api::core::v1::VolumeResourceRequirements>| {
            r.and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| apimachinery::resource::Quantity::parse(&q.0))
        };
        let (new_size, old_size) = (
            storage(ns.resources.as_ref()),
            storage(os.resources.as_ref()),
        );
        if bound
            && let (Some(new_size), Some(old_size)) = (new_size, old_size)
            && new_size < old_size
        {
            // Lowering a request is allowed (recovering from a failed expansion), but not
            // to or below what the volume already has.
            let capacity = o
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .and_then(|q| apimachinery::resource::Quantity::parse(&q.0));
            if capacity.is_some_and(|c| new_size <= c) {
                causes.push(Cause::forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than status.capacity",
                ));
            }
        }
        a.volume_attributes_class_name = os.volume_attributes_class_name.clone();
        if os.volume_name.as_deref().unwrap_or_default().is_empty() {
            a.volume_name = os.volume_name.clone();
        }
        if serde_json::to_value(&a).ok() != serde_json::to_value(os).ok() {
            causes.insert(0, Cause::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        causes
    };
    t.columns = Some(|| {
        cols(&[
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Age", "string", 0),
            ("VolumeMode", "string", 1),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let bound = !s["volumeName"].as_str().unwrap_or_default().is_empty();
        vec![
            json!(o["status"]["phase"].as_str().unwrap_or_default()),
            json!(s["volumeName"].as_str().unwrap_or_default()),
            json!(if bound {
                o["status"]["capacity"]["storage"]
                    .as_str()
                    .unwrap_or_default()
            } else {
                ""
            }),
            if bound {
                access_modes(&o["status"]["accessModes"])
            } else {
                json!("")
            },
            json!(s["storageClassName"].as_str().unwrap_or_default()),
            or_none(&s["volumeAttributesClassName"]),
            age(o),
            or_none(&s["volumeMode"]),
        ]
    };
    t
}
