//! NetworkPolicies (upstream `pkg/registry/networking/networkpolicy`).

use crate::printers::{age, cols, selector};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

pub fn strategy() -> Typed<NetworkPolicy> {
    let mut t = simple(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
    );
    t.tracks_generation = true;
    // policyTypes: Ingress always, Egress when egress rules exist (upstream defaulting).
    t.default = |n: &mut NetworkPolicy| {
        let Some(spec) = n.spec.as_mut() else { return };
        if spec.policy_types.as_ref().is_none_or(|p| p.is_empty()) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".into());
            }
            spec.policy_types = Some(types);
        }
        for rule in spec.ingress.iter_mut().flatten() {
            for p in rule.ports.iter_mut().flatten() {
                p.protocol.get_or_insert_with(|| "TCP".into());
            }
        }
        for rule in spec.egress.iter_mut().flatten() {
            for p in rule.ports.iter_mut().flatten() {
                p.protocol.get_or_insert_with(|| "TCP".into());
            }
        }
    };
    t.validate = |n: &NetworkPolicy| {
        let mut c = Vec::new();
        for (i, pt) in n
            .spec
            .iter()
            .flat_map(|s| s.policy_types.iter().flatten())
            .enumerate()
        {
            if pt != "Ingress" && pt != "Egress" {
                c.push(Cause::not_supported(
                    &format!("spec.policyTypes[{i}]"),
                    &json!(pt),
                    &["Ingress", "Egress"],
                ));
            }
        }
        c
    };
    t.columns = Some(|| cols(&[("Pod-Selector", "string", 0), ("Age", "string", 0)]));
    t.row = |o| vec![selector(&o["spec"]["podSelector"]), age(o)];
    t
}
