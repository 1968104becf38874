//! ResourceClaims and ResourceClaimTemplates (upstream `pkg/registry/resource/
//! resourceclaim{,template}`): the claim's spec is immutable, its status written through
//! `status`; printed with upstream's STATE column.

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate};
use serde_json::{Value, json};

pub fn claim() -> Typed<ResourceClaim> {
    let mut t = simple(
        "resource.k8s.io",
        "v1",
        "ResourceClaim",
        "resourceclaims",
        true,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    t.default = |c: &mut ResourceClaim| {
        if let Some(d) = c.spec.devices.as_mut() {
            super::validation::default_device_claim(d);
        }
    };
    t.validate = |c: &ResourceClaim| match &c.spec.devices {
        Some(d) => super::validation::device_claim("spec.devices", d),
        None => Vec::new(),
    };
    t.validate_update = |n, o| {
        immutable("spec", &json!(n.spec), &json!(o.spec))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| cols(&[("State", "string", 0), ("Age", "date", 0)]));
    t.row = |o| vec![json!(state(o)), age(o)];
    t
}

/// Upstream's `resourceClaimState`: deleted, pending, allocated, reserved.
fn state(o: &Value) -> String {
    let mut states = Vec::new();
    let deleted = o["metadata"]["deletionTimestamp"].is_string();
    if deleted {
        states.push("deleted");
    }
    if o["status"]["allocation"].is_null() {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if o["status"]["reservedFor"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            states.push("reserved");
        }
    }
    states.join(",")
}

pub fn template() -> Typed<ResourceClaimTemplate> {
    let mut t = simple(
        "resource.k8s.io",
        "v1",
        "ResourceClaimTemplate",
        "resourceclaimtemplates",
        true,
        &[],
    );
    t.default = |c: &mut ResourceClaimTemplate| {
        if let Some(d) = c.spec.spec.devices.as_mut() {
            super::validation::default_device_claim(d);
        }
    };
    t.validate = |c: &ResourceClaimTemplate| match &c.spec.spec.devices {
        Some(d) => super::validation::device_claim("spec.spec.devices", d),
        None => Vec::new(),
    };
    t.validate_update = |n, o| {
        immutable("spec", &json!(n.spec), &json!(o.spec))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| cols(&[("Age", "date", 0)]));
    t.row = |o| vec![age(o)];
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_reads_as_upstreams_printer() {
        assert_eq!(state(&json!({})), "pending");
        assert_eq!(
            state(&json!({"status": {"allocation": {}, "reservedFor": [{"name": "p"}]}})),
            "allocated,reserved"
        );
        assert_eq!(
            state(&json!({"metadata": {"deletionTimestamp": "x"}})),
            "deleted"
        );
    }
}
