//! StorageClasses (upstream `pkg/registry/storage/storageclass`).

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

pub fn strategy() -> Typed<StorageClass> {
    let mut t = simple(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
    );
    t.default = |s: &mut StorageClass| {
        s.reclaim_policy.get_or_insert_with(|| "Delete".into());
        s.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    };
    t.validate = |s: &StorageClass| {
        let mut c = Vec::new();
        if s.provisioner.is_empty() {
            c.push(Cause::required("provisioner", ""));
        }
        match s.reclaim_policy.as_deref() {
            Some("Delete" | "Retain") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "reclaimPolicy",
                &json!(other),
                &["Delete", "Retain"],
            )),
        }
        match s.volume_binding_mode.as_deref() {
            Some("Immediate" | "WaitForFirstConsumer") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "volumeBindingMode",
                &json!(other),
                &["Immediate", "WaitForFirstConsumer"],
            )),
        }
        c
    };
    t.validate_update = |n, o| {
        let mut c: Vec<Cause> = Vec::new();
        c.extend(immutable(
            "parameters",
            &json!(n.parameters),
            &json!(o.parameters),
        ));
        c.extend(immutable(
            "provisioner",
            &json!(n.provisioner),
            &json!(o.provisioner),
        ));
        c.extend(immutable(
            "reclaimPolicy",
            &json!(n.reclaim_policy),
            &json!(o.reclaim_policy),
        ));
        c.extend(immutable(
            "volumeBindingMode",
            &json!(n.volume_binding_mode),
            &json!(o.volume_binding_mode),
        ));
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Provisioner", "string", 0),
            ("ReclaimPolicy", "string", 0),
            ("VolumeBindingMode", "string", 0),
            ("AllowVolumeExpansion", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o: &Value| {
        vec![
            o["provisioner"].clone(),
            o["reclaimPolicy"].clone(),
            o["volumeBindingMode"].clone(),
            json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false)),
            age(o),
        ]
    };
    t
}
