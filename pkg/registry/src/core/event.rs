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
    // Events written through `events.k8s.io/v1` carry `eventTime` and `series` instead of
    // the core timestamps and count (upstream `printEvent`).
    t.row = |o| {
        let io = &o["involvedObject"];
        let ts = |k: &str| o[k].as_str().filter(|t| !t.is_empty());
        let first = ts("firstTimestamp").or(ts("eventTime"));
        let mut last = ts("lastTimestamp").or(first);
        let mut count = o["count"].as_i64().filter(|c| *c != 0).unwrap_or(1);
        if o["series"].is_object() {
            last = o["series"]["lastObservedTime"].as_str();
            count = o["series"]["count"].as_i64().unwrap_or_default();
        }
        let kind = io["kind"].as_str().unwrap_or_default().to_lowercase();
        let target = match io["name"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => format!("{kind}/{name}"),
            None => kind,
        };
        vec![
            json!(apiserver::endpoints::table::age(last)),
            o["type"].clone(),
            o["reason"].clone(),
            json!(target),
            json!(io["fieldPath"].as_str().unwrap_or_default()),
            json!(source(o)),
            o["message"].clone(),
            json!(apiserver::endpoints::table::age(first)),
            json!(count.to_string()),
            o["metadata"]["name"].clone(),
        ]
    };
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ago(secs: i64) -> String {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs))
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }

    #[test]
    fn rows_of_events_k8s_io_events() {
        let row = strategy().row;
        // Written through events.k8s.io/v1: only eventTime, no count.
        let e = json!({"eventTime": ago(30), "involvedObject": {"kind": "Node"},
            "reportingComponent": "kubelet", "reportingInstance": "n1", "metadata": {"name": "e"}});
        let r = row(&e);
        assert_eq!(
            (r[0].as_str(), r[3].as_str(), r[5].as_str()),
            (Some("30s"), Some("node"), Some("kubelet, n1"))
        );
        assert_eq!((r[7].as_str(), r[8].as_str()), (Some("30s"), Some("1")));
        // A series: last seen and count from the series.
        let mut s = e.clone();
        s["series"] = json!({"count": 5, "lastObservedTime": ago(10)});
        let r = row(&s);
        assert_eq!(
            (r[0].as_str(), r[7].as_str(), r[8].as_str()),
            (Some("10s"), Some("30s"), Some("5"))
        );
        // A core event keeps its own timestamps and count.
        let c = json!({"firstTimestamp": ago(120).split('.').next().unwrap().to_string() + "Z",
            "lastTimestamp": ago(60).split('.').next().unwrap().to_string() + "Z", "count": 3,
            "involvedObject": {"kind": "Pod", "name": "p"}, "metadata": {"name": "e"}});
        let r = row(&c);
        assert_eq!(
            (r[0].as_str(), r[3].as_str(), r[7].as_str(), r[8].as_str()),
            (Some("60s"), Some("pod/p"), Some("2m"), Some("3"))
        );
    }
}
