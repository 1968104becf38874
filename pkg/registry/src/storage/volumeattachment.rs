//! VolumeAttachments (upstream `pkg/registry/storage/volumeattachment`).

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::storage::v1::VolumeAttachment;
use serde_json::json;

pub fn strategy() -> Typed<VolumeAttachment> {
    let mut t = simple(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        false,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    // Upstream resets all metadata on status updates (ResetObjectMetaForStatus).
    t.status_metadata = apiserver::registry::strategy::StatusMetadata::Nothing;
    t.validate = |v: &VolumeAttachment| {
        let mut c = Vec::new();
        if v.spec.attacher.is_empty() {
            c.push(Cause::required("spec.attacher", ""));
        }
        if v.spec.node_name.is_empty() {
            c.push(Cause::required("spec.nodeName", ""));
        }
        let s = &v.spec.source;
        if s.persistent_volume_name.is_some() == s.inline_volume_spec.is_some() {
            c.push(Cause::required(
                "spec.source",
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            ));
        }
        c
    };
    t.validate_update = |n, o| {
        immutable("spec", &json!(n.spec), &json!(o.spec))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("Attacher", "string", 0),
            ("PV", "string", 0),
            ("Node", "string", 0),
            ("Attached", "boolean", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        vec![
            s["attacher"].clone(),
            json!(
                s["source"]["persistentVolumeName"]
                    .as_str()
                    .unwrap_or_default()
            ),
            s["nodeName"].clone(),
            json!(o["status"]["attached"].as_bool().unwrap_or(false)),
            age(o),
        ]
    };
    t
}
