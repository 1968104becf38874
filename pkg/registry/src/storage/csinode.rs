//! CSINodes (upstream `pkg/registry/storage/csinode`): per-node CSI driver registrations.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use k8s_openapi::api::storage::v1::CSINode;
use serde_json::json;

pub fn strategy() -> Typed<CSINode> {
    let mut t = simple("storage.k8s.io", "v1", "CSINode", "csinodes", false, &[]);
    t.columns = Some(|| cols(&[("Drivers", "integer", 0), ("Age", "string", 0)]));
    t.row = |o| {
        vec![
            json!(
                o["spec"]["drivers"]
                    .as_array()
                    .map(|d| d.len())
                    .unwrap_or(0)
            ),
            age(o),
        ]
    };
    t
}
