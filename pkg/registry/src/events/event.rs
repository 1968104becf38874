//! `events.k8s.io/v1` Events: the same objects as core `v1` Events under the newer field
//! names (upstream converts both through the internal type).

use apimachinery::StatusError;
use apiserver::endpoints::openapi::SchemaSet;
use apiserver::endpoints::view::VersionView;
use apiserver::registry::strategy::ResourceInfo;
use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

pub struct EventsView {
    pub info: ResourceInfo,
}

impl EventsView {
    pub fn new(core: &ResourceInfo) -> Self {
        let mut info = core.clone();
        info.gvk = apimachinery::GroupVersionKind::new("events.k8s.io", "v1", "Event");
        Self { info }
    }
}

fn rename(obj: &Value, api_version: &str, to_core: bool) -> Value {
    let mut out = Map::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        let key = RENAMES
            .iter()
            .find_map(|(new, old)| match to_core {
                true if k == new => Some(*old),
                false if k == old => Some(*new),
                _ => None,
            })
            .unwrap_or(k);
        out.insert(key.to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::from(api_version));
    Value::Object(out)
}

impl VersionView for EventsView {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn to_storage(&self, obj: Value) -> Result<Value, StatusError> {
        Ok(rename(&obj, "v1", true))
    }

    fn to_served(&self, obj: &Value) -> Result<Value, StatusError> {
        Ok(rename(obj, "events.k8s.io/v1", false))
    }

    /// `regarding.*`, `reportingController` and `deprecatedSource` select on the core
    /// fields they are stored as.
    fn field_label(&self, label: &str) -> String {
        if let Some(rest) = label.strip_prefix("regarding.") {
            return format!("involvedObject.{rest}");
        }
        match label {
            "reportingController" => "reportingComponent".into(),
            "deprecatedSource" => "source".into(),
            other => other.into(),
        }
    }

    fn openapi_schemas(&self) -> Option<SchemaSet> {
        Some(crate::typed::schema_set::<
            k8s_openapi::api::events::v1::Event,
        >())
    }
}
