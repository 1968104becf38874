//! Admission plumbing (upstream `apiserver/pkg/admission`): plugins see every write after
//! decoding and before storage, and may mutate or reject it.

pub mod namespace_lifecycle;

use apimachinery::{GroupResource, StatusError};
use async_trait::async_trait;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

pub struct Attributes<'a> {
    pub operation: Operation,
    pub resource: GroupResource,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub dry_run: bool,
    /// Who asks (None for the apiserver's own writes).
    pub user: Option<&'a crate::authentication::UserInfo>,
}

#[async_trait]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// `obj` is the incoming object for create/update, None for delete.
    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), StatusError>;
}
