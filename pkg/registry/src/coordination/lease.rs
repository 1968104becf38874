//! Leases (upstream `pkg/registry/coordination/lease`): leader election and node heartbeats.

use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;

pub fn strategy() -> Typed<Lease> {
    let i = info(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        "leases",
    );
    let mut t = Typed::new(i);
    t.allow_create_on_update = true;
    t.validate = |l: &Lease| {
        let mut c = Vec::new();
        if let Some(s) = &l.spec {
            if let Some(d) = s.lease_duration_seconds.filter(|d| *d <= 0) {
                c.push(Cause::invalid(
                    "spec.leaseDurationSeconds",
                    &json!(d),
                    "must be greater than 0",
                ));
            }
            c.extend(apimachinery::validation::non_negative(
                "spec.leaseTransitions",
                s.lease_transitions,
            ));
        }
        c
    };
    t.columns = Some(|| {
        vec![
            crate::typed::col("Holder", "string", "The holder of the lease.", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| {
        vec![
            json!(o["spec"]["holderIdentity"].as_str().unwrap_or("<none>")),
            crate::typed::age_cell(o),
        ]
    };
    t
}
