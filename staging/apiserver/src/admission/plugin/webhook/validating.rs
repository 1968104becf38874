//! ValidatingAdmissionWebhook: matching webhooks see the final object, all at once; any
//! denial refuses the request.

use super::{Source, call};
use crate::admission::{Attributes, Plugin};
use apimachinery::StatusError;
use async_trait::async_trait;
use serde_json::Value;

pub struct ValidatingWebhook(pub Source);

#[async_trait]
impl Plugin for ValidatingWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let hooks = self.0.matching(a, obj).await?;
        let answers =
            futures::future::join_all(hooks.iter().map(|w| call(&self.0, w, a, obj))).await;
        for answer in answers {
            if let Some(answer) = answer? {
                warnings.extend(answer.warnings);
            }
        }
        Ok(())
    }
}
