//! The `scale` subresource (`autoscaling/v1` Scale) over any resource whose replica
//! counts live at known paths: the built-in workloads (`.spec.replicas`) and custom
//! resources (`subresources.scale` paths).

use super::generic::{Part, Registry};
use super::meta;
use crate::endpoints::SubresourceHandler;
use apimachinery::StatusError;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Where the Scale's `status.selector` comes from.
pub enum SelectorSource {
    /// A LabelSelector (or a plain label map, as ReplicationControllers have) at a path,
    /// formatted as upstream's `FormatLabelSelector`.
    LabelSelector(String),
    /// A string already in selector form (CRD `labelSelectorPath`).
    String(String),
    None,
}

pub struct ScaleHandler {
    pub registry: Arc<Registry>,
    pub spec_replicas: String,
    pub status_replicas: String,
    pub selector: SelectorSource,
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = &cur[seg];
    }
    cur
}

fn set(v: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    let mut cur = v;
    for seg in &segs[..segs.len().saturating_sub(1)] {
        if !cur[*seg].is_object() {
            cur[*seg] = Value::Object(Map::new());
        }
        cur = cur.get_mut(*seg).expect("just made an object");
    }
    if let Some(last) = segs.last() {
        cur[*last] = value;
    }
}

impl ScaleHandler {
    /// `.spec.replicas` / `.status.replicas` / `.spec.selector`, as the built-in workloads.
    pub fn workload(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            selector: SelectorSource::LabelSelector(".spec.selector".into()),
        }
    }

    fn to_scale(&self, obj: &Value) -> Value {
        let m = &obj["metadata"];
        let mut status = json!({"replicas": get(obj, &self.status_replicas).as_i64().unwrap_or(0)});
        let selector = match &self.selector {
            SelectorSource::LabelSelector(p) => {
                Some(apimachinery::labels::format_label_selector(get(obj, p)))
            }
            SelectorSource::String(p) => get(obj, p).as_str().map(String::from),
            SelectorSource::None => None,
        };
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            status["selector"] = json!(s);
        }
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
            "spec": {"replicas": get(obj, &self.spec_replicas).as_i64().unwrap_or(0)},
            "status": status,
        })
    }
}

#[async_trait]
impl SubresourceHandler for ScaleHandler {
    async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value, StatusError> {
        Ok(self.to_scale(&self.registry.get(ns, name).await?))
    }

    async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
        manager: &str,
    ) -> Result<Value, StatusError> {
        let replicas = body["spec"]["replicas"].as_i64().unwrap_or(0);
        if let Some(c) = apimachinery::validation::non_negative("spec.replicas", Some(replicas)) {
            return Err(StatusError::invalid("autoscaling", "Scale", name, vec![c]));
        }
        let pinned_rv = meta::pinned_resource_version(&body);
        let gr = self.registry.strategy.info().group_resource();
        let av = self.registry.strategy.info().gvk.api_version();
        let scope = crate::endpoints::fieldmanager::Scope {
            status_split: true,
            subresource: "scale",
            api_version: &av,
            shape: crate::endpoints::shape::Shape::unknown(),
        };
        let (obj, _) = self
            .registry
            .guaranteed_update(ns, name, Part::Whole, dry_run, &mut |cur| {
                let mut next = cur
                    .cloned()
                    .ok_or_else(|| StatusError::not_found(&gr, name))?;
                set(&mut next, &self.spec_replicas, json!(replicas));
                crate::endpoints::fieldmanager::update(cur, &mut next, manager, scope);
                meta::pin_resource_version(&mut next, &pinned_rv);
                Ok(next)
            })
            .await?;
        Ok(self.to_scale(&obj))
    }
}
