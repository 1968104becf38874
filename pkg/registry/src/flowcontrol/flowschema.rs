//! FlowSchemas (upstream `pkg/registry/flowcontrol/flowschema`): matchingPrecedence
//! defaults to 1000 and lies in 1..=10000.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::flowcontrol::v1::FlowSchema;
use serde_json::json;

pub fn strategy() -> Typed<FlowSchema> {
    let mut t = simple(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        false,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    t.tracks_generation = true;
    // Upstream's status strategy keeps the stored metadata whole.
    t.status_metadata = apiserver::registry::strategy::StatusMetadata::Nothing;
    t.default = |f: &mut FlowSchema| {
        if let Some(spec) = f.spec.as_mut() {
            spec.matching_precedence.get_or_insert(1000);
        }
    };
    t.validate = |f: &FlowSchema| {
        let Some(spec) = &f.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if let Some(p) = spec
            .matching_precedence
            .filter(|p| !(1..=10000).contains(p))
        {
            c.push(Cause::invalid(
                "spec.matchingPrecedence",
                &json!(p),
                "must be between 1 and 10000 inclusively",
            ));
        }
        if spec.priority_level_configuration.name.is_empty() {
            c.push(Cause::required(
                "spec.priorityLevelConfiguration.name",
                "must reference a priority level",
            ));
        }
        if let Some(d) = &spec.distinguisher_method
            && !matches!(d.type_.as_str(), "ByUser" | "ByNamespace")
        {
            c.push(Cause::not_supported(
                "spec.distinguisherMethod.type",
                &json!(d.type_),
                &["ByNamespace", "ByUser"],
            ));
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("PriorityLevel", "string", 0),
            ("MatchingPrecedence", "string", 0),
            ("DistinguisherMethod", "string", 0),
            ("Age", "string", 0),
            ("MissingPL", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let missing = o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Dangling")
            .and_then(|c| c["status"].as_str())
            .unwrap_or("?");
        vec![
            s["priorityLevelConfiguration"]["name"].clone(),
            json!(s["matchingPrecedence"].as_i64().unwrap_or(0).to_string()),
            json!(
                s["distinguisherMethod"]["type"]
                    .as_str()
                    .unwrap_or("<none>")
            ),
            age(o),
            json!(missing),
        ]
    };
    t
}
