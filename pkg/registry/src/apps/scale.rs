//! The `scale` subresource (`autoscaling/v1` Scale) of deployments and replicasets.

use apimachinery::{Cause, StatusError};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Scale {
    pub registry: Arc<Registry>,
}

/// The string form of a label selector object (upstream `FormatLabelSelector`), as
/// Scale's `status.selector` and the SELECTOR column carry it.
pub fn selector_string(sel: &Value) -> String {
    // ReplicationControllers carry a plain label map rather than a LabelSelector.
    if sel.is_object() && sel.get("matchLabels").is_none() && sel.get("matchExpressions").is_none()
    {
        return sel
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
    }
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let vals: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

fn to_scale(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_string(&obj["spec"]["selector"])}
    })
}

#[async_trait]
impl SubresourceHandler for Scale {
    async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value, StatusError> {
        Ok(to_scale(&self.registry.get(ns, name).await?))
    }

    async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<Value, StatusError> {
        let replicas = body["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            return Err(StatusError::invalid(
                "autoscaling",
                "Scale",
                name,
                vec![Cause::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let pinned_rv = body["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from);
        let (obj, _) = self
            .registry
            .guaranteed_update(ns, name, Part::Whole, dry_run, &mut |cur| {
                let mut next = cur.cloned().ok_or_else(|| {
                    StatusError::not_found(&self.registry.strategy.info().group_resource(), name)
                })?;
                next["spec"]["replicas"] = json!(replicas);
                match &pinned_rv {
                    Some(rv) => {
                        meta::meta_mut(&mut next).insert("resourceVersion".into(), json!(rv));
                    }
                    None => {
                        meta::meta_mut(&mut next).remove("resourceVersion");
                    }
                }
                Ok(next)
            })
            .await?;
        Ok(to_scale(&obj))
    }
}
