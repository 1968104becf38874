//! MutatingAdmissionWebhook: matching webhooks are called one after another, each seeing
//! the previous one's changes; a webhook with `reinvocationPolicy: IfNeeded` is called
//! once more when a later webhook changed the object after it.

use super::{Source, call};
use crate::admission::{Attributes, Plugin};
use apimachinery::StatusError;
use async_trait::async_trait;
use serde_json::Value;

pub struct MutatingWebhook(pub Source);

#[async_trait]
impl Plugin for MutatingWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(obj) = obj else {
            // Deletes and connects carry no object to change; webhooks still see them.
            for w in self.0.matching(a, None).await? {
                call(&self.0, &w, a, None).await?;
            }
            return Ok(());
        };
        let hooks = self.0.matching(a, Some(obj)).await?;
        // Index of the last webhook that changed the object, and which ran before it.
        let mut last_change: Option<usize> = None;
        let mut reinvoke = Vec::new();
        for (i, w) in hooks.iter().enumerate() {
            if self.run(w, a, obj).await? {
                last_change = Some(i);
            }
            if w["reinvocationPolicy"].as_str() == Some("IfNeeded") {
                reinvoke.push(i);
            }
        }
        if let Some(changed_at) = last_change {
            for i in reinvoke.into_iter().filter(|i| *i < changed_at) {
                self.run(&hooks[i], a, obj).await?;
            }
        }
        Ok(())
    }
}

impl MutatingWebhook {
    /// Calls one webhook and applies its patch; true when the object changed.
    async fn run(
        &self,
        w: &Value,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<bool, StatusError> {
        let Some(answer) = call(&self.0, w, a, Some(obj)).await? else {
            return Ok(false);
        };
        for warning in &answer.warnings {
            tracing::debug!(webhook = w["name"].as_str(), warning = %warning, "webhook warning");
        }
        let Some(patch) = answer.patch else {
            return Ok(false);
        };
        let before = obj.clone();
        json_patch::patch(obj, &patch).map_err(|e| {
            StatusError::new(
                500,
                "InternalError",
                format!(
                    "Internal error occurred: webhook {:?} returned a patch that does not apply: {e}",
                    w["name"].as_str().unwrap_or_default()
                ),
            )
        })?;
        Ok(*obj != before)
    }
}
