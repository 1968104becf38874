//! PriorityLevelConfigurations (upstream `pkg/registry/flowcontrol/prioritylevelconfiguration`
//! and the v1 defaults): Limited levels get 30 shares and, when queuing, 64 queues, hand
//! size 8 and queue length 50.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::flowcontrol::v1::{PriorityLevelConfiguration, QueuingConfiguration};
use serde_json::json;

pub fn strategy() -> Typed<PriorityLevelConfiguration> {
    let mut t = simple(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        false,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    t.tracks_generation = true;
    // Upstream's status strategy keeps the stored metadata whole.
    t.status_metadata = apiserver::registry::strategy::StatusMetadata::Nothing;
    t.default = |p: &mut PriorityLevelConfiguration| {
        let Some(spec) = p.spec.as_mut() else { return };
        if let Some(l) = spec.limited.as_mut() {
            l.nominal_concurrency_shares.get_or_insert(30);
            l.lendable_percent.get_or_insert(0);
            if let Some(r) = l.limit_response.as_mut()
                && r.type_ == "Queue"
            {
                let q = r.queuing.get_or_insert_with(QueuingConfiguration::default);
                q.queues.get_or_insert(64);
                q.hand_size.get_or_insert(8);
                q.queue_length_limit.get_or_insert(50);
            }
        }
        if let Some(e) = spec.exempt.as_mut() {
            e.nominal_concurrency_shares.get_or_insert(0);
            e.lendable_percent.get_or_insert(0);
        }
    };
    t.validate = |p: &PriorityLevelConfiguration| {
        let Some(spec) = &p.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        match spec.type_.as_str() {
            "Limited" if spec.limited.is_none() => c.push(Cause::required(
                "spec.limited",
                "must not be empty when type is Limited",
            )),
            "Exempt" if spec.limited.is_some() => c.push(Cause::forbidden(
                "spec.limited",
                "must be nil if the type is not Limited",
            )),
            "Limited" | "Exempt" => {}
            other => c.push(Cause::not_supported(
                "spec.type",
                &json!(other),
                &["Exempt", "Limited"],
            )),
        }
        if let Some(l) = &spec.limited
            && let Some(lp) = l.lendable_percent.filter(|v| !(0..=100).contains(v))
        {
            c.push(Cause::invalid(
                "spec.limited.lendablePercent",
                &json!(lp),
                "must be between 0 and 100, inclusive",
            ));
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Type", "string", 0),
            ("NominalConcurrencyShares", "string", 0),
            ("Queues", "string", 0),
            ("HandSize", "string", 0),
            ("QueueLengthLimit", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let none = || json!("<none>");
        let q = &s["limited"]["limitResponse"]["queuing"];
        let num = |v: &serde_json::Value| {
            v.as_i64()
                .map(|n| json!(n.to_string()))
                .unwrap_or_else(none)
        };
        let shares = match s["type"].as_str() {
            Some("Limited") => num(&s["limited"]["nominalConcurrencyShares"]),
            _ => none(),
        };
        vec![
            s["type"].clone(),
            shares,
            num(&q["queues"]),
            num(&q["handSize"]),
            num(&q["queueLengthLimit"]),
            age(o),
        ]
    };
    t
}
