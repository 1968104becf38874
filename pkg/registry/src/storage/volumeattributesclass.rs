//! VolumeAttributesClasses (upstream `pkg/registry/storage/volumeattributesclass`).

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::storage::v1::VolumeAttributesClass;
use serde_json::json;

pub fn strategy() -> Typed<VolumeAttributesClass> {
    let mut t = simple(
        "storage.k8s.io",
        "v1",
        "VolumeAttributesClass",
        "volumeattributesclasses",
        false,
        &["vac"],
    );
    t.validate = |v: &VolumeAttributesClass| {
        if v.driver_name.is_empty() {
            return vec![Cause::required("driverName", "")];
        }
        Vec::new()
    };
    t.validate_update = |n, o| {
        let mut c = Vec::new();
        c.extend(immutable(
            "driverName",
            &json!(n.driver_name),
            &json!(o.driver_name),
        ));
        c.extend(immutable(
            "parameters",
            &json!(n.parameters),
            &json!(o.parameters),
        ));
        c
    };
    t.columns = Some(|| cols(&[("DriverName", "string", 0), ("Age", "string", 0)]));
    t.row = |o| vec![o["driverName"].clone(), age(o)];
    t
}
