//! ResourceSlices (upstream `pkg/registry/resource/resourceslice`): a driver's devices in
//! a pool, for one node, a node selector or all nodes; selectable by `spec.nodeName` and
//! `spec.driver`.

use crate::printers::{age, cols, or_none};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use apimachinery::validation::{dns1123_label, dns1123_subdomain};
use k8s_openapi::api::resource::v1::ResourceSlice;
use serde_json::json;

/// Upstream's `ResourceSliceMaxDevices`.
const MAX_DEVICES: usize = 128;

pub fn strategy() -> Typed<ResourceSlice> {
    let mut t = simple(
        "resource.k8s.io",
        "v1",
        "ResourceSlice",
        "resourceslices",
        false,
        &[],
    );
    t.tracks_generation = true;
    t.validate = validate;
    t.fields = |o| {
        [
            (
                "spec.nodeName",
                o["spec"]["nodeName"].as_str().unwrap_or_default(),
            ),
            (
                "spec.driver",
                o["spec"]["driver"].as_str().unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    t.supported_fields = &["spec.nodeName", "spec.driver"];
    t.columns = Some(|| {
        cols(&[
            ("Node", "string", 0),
            ("Driver", "string", 0),
            ("Pool", "string", 0),
            ("Age", "date", 0),
        ])
    });
    t.row = |o| {
        vec![
            or_none(&o["spec"]["nodeName"]),
            o["spec"]["driver"].clone(),
            o["spec"]["pool"]["name"].clone(),
            age(o),
        ]
    };
    t
}

fn validate(s: &ResourceSlice) -> Vec<Cause> {
    let spec = &s.spec;
    let mut c = Vec::new();
    if spec.driver.is_empty() {
        c.push(Cause::required("spec.driver", ""));
    }
    for e in dns1123_subdomain(&spec.driver)
        .into_iter()
        .filter(|_| !spec.driver.is_empty())
    {
        c.push(Cause::invalid("spec.driver", &json!(spec.driver), &e));
    }
    if spec.pool.name.is_empty() {
        c.push(Cause::required("spec.pool.name", ""));
    }
    if spec.pool.resource_slice_count <= 0 {
        c.push(Cause::invalid(
            "spec.pool.resourceSliceCount",
            &json!(spec.pool.resource_slice_count),
            "must be greater than zero",
        ));
    }
    if spec.pool.generation < 0 {
        c.push(Cause::invalid(
            "spec.pool.generation",
            &json!(spec.pool.generation),
            "must be greater than or equal to 0",
        ));
    }
    let placements = [
        spec.node_name.as_deref().is_some_and(|n| !n.is_empty()),
        spec.node_selector.is_some(),
        spec.all_nodes.unwrap_or(false),
        spec.per_device_node_selection.unwrap_or(false),
    ];
    if placements.iter().filter(|p| **p).count() != 1 {
        c.push(Cause::invalid(
            "spec",
            &json!("{`nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection`}"),
            "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required",
        ));
    }
    let devices = spec.devices.as_deref().unwrap_or_default();
    if devices.len() > MAX_DEVICES {
        c.push(Cause::too_many("spec.devices", devices.len(), MAX_DEVICES));
    }
    for (i, d) in devices.iter().enumerate() {
        let f = format!("spec.devices[{i}].name");
        if d.name.is_empty() {
            c.push(Cause::required(&f, ""));
        }
        for e in dns1123_label(&d.name)
            .into_iter()
            .filter(|_| !d.name.is_empty())
        {
            c.push(Cause::invalid(&f, &json!(d.name), &e));
        }
        if devices[..i].iter().any(|o| o.name == d.name) {
            c.push(Cause::duplicate(&f, &json!(d.name)));
        }
    }
    c
}
