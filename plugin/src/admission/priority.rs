//! Priority (upstream `plugin/pkg/admission/priority`): a pod's `priorityClassName`
//! (or the global default class) is resolved to `spec.priority` and `preemptionPolicy`;
//! only one PriorityClass may be the global default.

use super::list;
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Priority {
    pub classes: Arc<Registry>,
}

const DEFAULT_PREEMPTION: &str = "PreemptLowerPriority";

#[async_trait]
impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = obj else { return Ok(()) };
        if !a.is("", "pods") || !a.subresource.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        let forbid =
            |m: String| StatusError::forbidden(&GroupResource::new("", "pods"), a.name, &m);
        let classes = list(&self.classes, None).await;
        let name = pod["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let class = if name.is_empty() {
            // Several defaults can exist after a race; the lowest value wins.
            classes
                .iter()
                .filter(|c| c["globalDefault"] == true)
                .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
        } else {
            Some(
                classes
                    .iter()
                    .find(|c| c["metadata"]["name"] == name.as_str())
                    .ok_or_else(|| {
                        forbid(format!("no PriorityClass with name {name} was found"))
                    })?,
            )
        };
        let (value, policy) = match class {
            Some(c) => {
                if name.is_empty() {
                    pod["spec"]["priorityClassName"] = c["metadata"]["name"].clone();
                }
                (
                    c["value"].as_i64().unwrap_or(0),
                    c["preemptionPolicy"]
                        .as_str()
                        .unwrap_or(DEFAULT_PREEMPTION)
                        .to_string(),
                )
            }
            None => (0, DEFAULT_PREEMPTION.to_string()),
        };
        if let Some(given) = pod["spec"]["priority"].as_i64()
            && given != value
        {
            return Err(forbid(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            )));
        }
        if let Some(given) = pod["spec"]["preemptionPolicy"].as_str()
            && given != policy
        {
            return Err(forbid(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
        pod["spec"]["priority"] = json!(value);
        pod["spec"]["preemptionPolicy"] = json!(policy);
        Ok(())
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(pc) = obj else { return Ok(()) };
        if !a.is("scheduling.k8s.io", "priorityclasses") || pc["globalDefault"] != true {
            return Ok(());
        }
        for other in list(&self.classes, None).await {
            let other_name = other["metadata"]["name"].as_str().unwrap_or_default();
            if other["globalDefault"] == true && other_name != a.name {
                return Err(StatusError::forbidden(
                    &a.resource,
                    a.name,
                    &format!(
                        "PriorityClass {other_name} is already marked as default. Only one default can exist"
                    ),
                ));
            }
        }
        Ok(())
    }
}
