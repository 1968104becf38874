//! NamespaceLifecycle (upstream `plugin/pkg/admission/namespace/lifecycle`): no new content
//! in a missing or terminating namespace, and the system namespaces cannot be deleted.

use super::{Attributes, Operation, Plugin};
use crate::registry::generic::Registry;
use apimachinery::{GroupResource, StatusError};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// Namespaces that exist for the life of the cluster.
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle {
    pub namespaces: Arc<Registry>,
}

#[async_trait]
impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    /// A mutating-phase check as upstream's (`Lifecycle.Admit`): a missing namespace is a
    /// 404 before the object is validated.
    async fn admit(&self, a: &Attributes<'_>, _obj: Option<&mut Value>) -> Result<(), StatusError> {
        let ns_resource = GroupResource::new("", "namespaces");
        if a.resource == ns_resource {
            if a.operation == Operation::Delete
                && a.subresource.is_empty()
                && IMMORTAL.contains(&a.name)
            {
                return Err(StatusError::forbidden(
                    &a.resource,
                    a.name,
                    "this namespace may not be deleted",
                ));
            }
            return Ok(());
        }
        if a.namespace.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        // Read through the cache first; a miss is confirmed against storage (the
        // namespace may be younger than the cache).
        let key = self.namespaces.key(None, a.namespace);
        let ns = match self.namespaces.cacher.as_ref().and_then(|c| c.get(&key)) {
            Some(o) => o.value.clone(),
            None => match self.namespaces.get(None, a.namespace).await {
                Ok(v) => v,
                Err(e) if e.code == 404 => {
                    return Err(StatusError::not_found(&ns_resource, a.namespace));
                }
                Err(e) => return Err(e),
            },
        };
        if ns["status"]["phase"] == "Terminating" || ns["metadata"]["deletionTimestamp"].is_string()
        {
            return Err(StatusError::forbidden(
                &a.resource,
                a.name,
                &format!(
                    "unable to create new content in namespace {} because it is being terminated",
                    a.namespace
                ),
            ));
        }
        Ok(())
    }
}
