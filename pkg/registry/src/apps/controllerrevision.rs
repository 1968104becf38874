//! ControllerRevisions (upstream `pkg/registry/apps/controllerrevision`): immutable
//! snapshots of StatefulSet/DaemonSet templates.

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, info};
use k8s_openapi::api::apps::v1::ControllerRevision;
use serde_json::json;

pub fn strategy() -> Typed<ControllerRevision> {
    let i = info(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        "controllerrevisions",
    );
    let mut t = Typed::new(i);
    t.validate = |r: &ControllerRevision| {
        if let Some(c) = apimachinery::validation::non_negative("revision", Some(r.revision)) {
            return vec![c];
        }
        Vec::new()
    };
    t.validate_update = |n, o| {
        immutable("data", &json!(n.data), &json!(o.data))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("Controller", "string", 0),
            ("Revision", "integer", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let owner = o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["controller"].as_bool() == Some(true))
            .map(|r| {
                let group = r["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit_once('/')
                    .map(|(g, _)| g)
                    .unwrap_or_default();
                let kind = r["kind"].as_str().unwrap_or_default().to_lowercase();
                let kind = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                format!("{kind}/{}", r["name"].as_str().unwrap_or_default())
            })
            .unwrap_or_else(|| "<none>".into());
        vec![json!(owner), json!(o["revision"]), age(o)]
    };
    t
}
