//! CSIStorageCapacities (upstream `pkg/registry/storage/csistoragecapacity`).

use crate::printers::cols;
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::storage::v1::CSIStorageCapacity;
use serde_json::json;

pub fn strategy() -> Typed<CSIStorageCapacity> {
    let mut t = simple(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        true,
        &[],
    );
    t.validate = |c: &CSIStorageCapacity| {
        if c.storage_class_name.is_empty() {
            return vec![Cause::required("storageClassName", "")];
        }
        Vec::new()
    };
    t.columns = Some(|| cols(&[("StorageClassName", "string", 0), ("Capacity", "string", 0)]));
    t.row = |o| {
        vec![
            o["storageClassName"].clone(),
            json!(o["capacity"].as_str().unwrap_or("<unset>")),
        ]
    };
    t
}
