//! RuntimeClass (upstream `plugin/pkg/admission/runtimeclass`): a pod naming a
//! RuntimeClass takes its overhead and scheduling (node selector, tolerations); the class
//! must exist, and a pod may not bring an overhead of its own.

use super::get;
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct RuntimeClass {
    pub classes: Arc<Registry>,
}

#[async_trait]
impl Plugin for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = obj else { return Ok(()) };
        if !a.is("", "pods") || !a.subresource.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        let forbid =
            |m: String| StatusError::forbidden(&GroupResource::new("", "pods"), a.name, &m);
        let Some(name) = pod["spec"]["runtimeClassName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(String::from)
        else {
            if pod["spec"]["overhead"].is_object() {
                return Err(forbid(
                    "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead".into(),
                ));
            }
            return Ok(());
        };
        let Some(rc) = get(&self.classes, None, &name).await else {
            return Err(forbid(format!(
                "pod rejected: RuntimeClass {name:?} not found"
            )));
        };
        let overhead = &rc["overhead"]["podFixed"];
        if overhead.is_object() {
            if pod["spec"]["overhead"].is_object() && pod["spec"]["overhead"] != *overhead {
                return Err(forbid(
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                ));
            }
            pod["spec"]["overhead"] = overhead.clone();
        } else if pod["spec"]["overhead"].is_object() {
            return Err(forbid(
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead".into(),
            ));
        }
        let scheduling = &rc["scheduling"];
        if let Some(selector) = scheduling["nodeSelector"].as_object() {
            for (k, v) in selector {
                match pod["spec"]["nodeSelector"][k].as_str() {
                    Some(existing) if Some(existing) != v.as_str() => {
                        return Err(forbid(format!(
                            "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {existing}",
                            v.as_str().unwrap_or_default()
                        )));
                    }
                    _ => {
                        if !pod["spec"]["nodeSelector"].is_object() {
                            pod["spec"]["nodeSelector"] = json!({});
                        }
                        pod["spec"]["nodeSelector"][k] = v.clone();
                    }
                }
            }
        }
        for t in scheduling["tolerations"].as_array().into_iter().flatten() {
            let present = pod["spec"]["tolerations"]
                .as_array()
                .is_some_and(|ts| ts.contains(t));
            if !present {
                if !pod["spec"]["tolerations"].is_array() {
                    pod["spec"]["tolerations"] = json!([]);
                }
                if let Some(ts) = pod["spec"]["tolerations"].as_array_mut() {
                    ts.push(t.clone());
                }
            }
        }
        Ok(())
    }
}
