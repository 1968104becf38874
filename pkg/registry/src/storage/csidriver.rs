//! CSIDrivers (upstream `pkg/registry/storage/csidriver`).

use crate::printers::{age, boolean, cols, join};
use crate::typed::{Typed, immutable, simple};
use k8s_openapi::api::storage::v1::CSIDriver;
use serde_json::json;

pub fn strategy() -> Typed<CSIDriver> {
    let mut t = simple(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        false,
        &[],
    );
    t.default = |d: &mut CSIDriver| {
        let s = &mut d.spec;
        s.attach_required.get_or_insert(true);
        s.pod_info_on_mount.get_or_insert(false);
        s.storage_capacity.get_or_insert(false);
        s.requires_republish.get_or_insert(false);
        s.se_linux_mount.get_or_insert(false);
        s.fs_group_policy
            .get_or_insert_with(|| "ReadWriteOnceWithFSType".into());
        if s.volume_lifecycle_modes
            .as_ref()
            .is_none_or(|m| m.is_empty())
        {
            s.volume_lifecycle_modes = Some(vec!["Persistent".into()]);
        }
    };
    t.validate_update = |n, o| {
        let mut c = Vec::new();
        c.extend(immutable(
            "spec.attachRequired",
            &json!(n.spec.attach_required),
            &json!(o.spec.attach_required),
        ));
        c.extend(immutable(
            "spec.volumeLifecycleModes",
            &json!(n.spec.volume_lifecycle_modes),
            &json!(o.spec.volume_lifecycle_modes),
        ));
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("AttachRequired", "boolean", 0),
            ("PodInfoOnMount", "boolean", 0),
            ("StorageCapacity", "boolean", 0),
            ("TokenRequests", "string", 0),
            ("RequiresRepublish", "boolean", 0),
            ("Modes", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let tokens = join(&s["tokenRequests"], Some("audience"));
        vec![
            boolean(&s["attachRequired"], true),
            boolean(&s["podInfoOnMount"], false),
            boolean(&s["storageCapacity"], false),
            json!(if tokens.is_empty() {
                "<unset>".into()
            } else {
                tokens
            }),
            boolean(&s["requiresRepublish"], false),
            json!(join(&s["volumeLifecycleModes"], None)),
            age(o),
        ]
    };
    t
}
