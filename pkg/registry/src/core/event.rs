//! Events (upstream `pkg/registry/core/event`).

use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

/// SOURCE: the reporting component, with its host when known (upstream
/// `formatEventSource`).
fn source(o: &Value) -> String {
    let (component, host) = match o["source"]["component"].as_str().filter(|c| !c.is_empty()) {
        Some(c) => (c, o["source"]["host"].as_str().unwrap_or_default()),
        None => (
            o["reportingComponent"].as_str().unwrap_or_default(),
            o["reportingInstance"].as_str().unwrap_or_default(),
        ),
    };
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}

pub fn strategy() -> Typed<Event> {
    let mut i = info("", "v1", "Event", "events", true, "events");
    i.short_names = vec!["ev".into()];
    let mut t = Typed::new(i);
    t.allow_create_on_update = true;
    t.validate = |e: &Event| {
        let mut c = Vec::new();
        let ns = e.metadata.namespace.as_deref().unwrap_or_default();
        let obj_ns = e.involved_object.namespace.as_deref().unwrap_or_default();
        if !obj_ns.is_empty() && obj_ns != ns {
            c.push(Cause::invalid(
                "involvedObject.namespace",
                &json!(obj_ns),
                "does not match event.namespace",
            ));
        }
        c
    };
    t.fields = |o: &Value| {
        let io = &o["involvedObject"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        [
            ("involvedObject.kind", s(&io["kind"])),
            ("involvedObject.namespace", s(&io["namespace"])),
            ("involvedObject.name", s(&io["name"])),
            ("involvedObject.uid", s(&io["uid"])),
            ("involvedObject.apiVersion", s(&io["apiVersion"])),
            ("involvedObject.resourceVersion", s(&io["resourceVersion"])),
            ("involvedObject.fieldPath", s(&io["fieldPath"])),
            ("reason", s(&o["reason"])),
            ("reportingComponent", s(&o["reportingComponent"])),
            ("source", s(&o["source"]["component"])),
            ("type", s(&o["type"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    t.supported_fields = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    // Upstream's event printer: the name comes last, in `-o wide` only.
    t.columns = Some(|| {
        vec![
            crate::typed::col("Last Seen", "string", "", 0),
            crate::typed::col("Type", "string", "", 0),
            crate::typed::col("Reason", "string", "", 0),
            crate::typed::col("Object", "string", "", 0),
            crate::typed::col("Subobject", "string", "", 1),
            crate::typed::col("Source", "string", "", 1),
            crate::typed::col("Message", "string", "", 0),
            crate::typed::col("First Seen", "string", "", 1),
            crate::typed::col("Count", "string", "", 1),
            crate::typed::col("Name", "string", "", 1),
        ]
    });
    t.row = |o| {
        let io = &o["involvedObject"];
        let last = o["lastTimestamp"]
            .as_str()
            .or(o["eventTime"].as_str())
            .or(o["metadata"]["creationTimestamp"].as_str());
        vec![
            json!(apiserver::endpoints::table::age(last)),
            o["type"].clone(),
            o["reason"].clone(),
            json!(format!(
                "{}/{}",
                io["kind"].as_str().unwrap_or_default().to_lowercase(),
                io["name"].as_str().unwrap_or_default()
            )),
            json!(io["fieldPath"].as_str().unwrap_or_default()),
            json!(source(o)),
            o["message"].clone(),
            json!(apiserver::endpoints::table::age(
                o["firstTimestamp"].as_str().or(o["eventTime"].as_str())
            )),
            json!(o["count"].as_i64().unwrap_or(1).to_string()),
            o["metadata"]["name"].clone(),
        ]
    };
    t
}
