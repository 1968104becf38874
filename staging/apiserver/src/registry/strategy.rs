//! What makes one resource different from another (upstream's `rest.RESTCreateStrategy`,
//! `RESTUpdateStrategy`, `RESTDeleteStrategy` and the table convertor), on JSON objects.

use apimachinery::{Cause, GroupVersionKind, StatusError};
use async_trait::async_trait;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A resource's identity and discovery facts.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub gvk: GroupVersionKind,
    /// Plural, as in URLs: `deployments`.
    pub resource: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Subresources served, e.g. `status`, `scale`, `binding`.
    pub subresources: Vec<String>,
    /// Etcd key segment(s) under the storage prefix, e.g. `services/specs`, `minions`.
    pub storage_path: String,
    /// Whether DELETE on the collection is served (namespaces: no, as upstream).
    pub delete_collection: bool,
}

impl ResourceInfo {
    pub fn list_kind(&self) -> String {
        format!("{}List", self.gvk.kind)
    }

    pub fn group_resource(&self) -> apimachinery::GroupResource {
        apimachinery::GroupResource::new(&self.gvk.group, &self.resource)
    }
}

/// One column of a `meta.k8s.io/v1` Table.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: Cow<'static, str>,
    pub type_: Cow<'static, str>,
    pub format: Cow<'static, str>,
    pub description: Cow<'static, str>,
    /// 0 = always shown, >0 = `-o wide` only.
    pub priority: i32,
}

/// The metadata a status update keeps from the request (upstream's status strategies
/// reset `spec` and, per type, some metadata; everything else comes from the stored
/// object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMetadata {
    /// Most built-in types: only spec is reset, so labels and annotations change.
    LabelsAndAnnotations,
    /// Deployments: labels are reset too.
    Annotations,
    /// Custom resources and `ResetObjectMetaForStatus` types: no metadata.
    Nothing,
}

/// Per-resource behaviour. Hooks default to "nothing special".
#[async_trait]
pub trait Strategy: Send + Sync + 'static {
    fn info(&self) -> &ResourceInfo;

    /// Turns a request body into the stored form: typed decode (unknown fields dropped and
    /// returned as their paths), then defaulting. Errors are 400s.
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), StatusError>;

    fn prepare_for_create(&self, _obj: &mut Value) {}
    /// Records who creates the object (upstream reads the user from the request
    /// context, e.g. a CSR's `spec.username`); runs after admission so no mutating
    /// webhook can change it.
    fn record_requester(&self, _obj: &mut Value, _user: &crate::authentication::UserInfo) {}
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}
    fn validate(&self, obj: &Value) -> Vec<Cause>;
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause>;

    /// Object name rule: DNS-1123 subdomain for most resources.
    fn validate_name(&self, name: &str) -> Vec<String> {
        apimachinery::validation::dns1123_subdomain(name)
    }

    /// Field-selector attributes besides `metadata.name` / `metadata.namespace`.
    fn fields(&self, _obj: &Value) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn supports_field(&self, field: &str) -> bool {
        matches!(field, "metadata.name" | "metadata.namespace")
    }

    /// `metadata.generation` starts at 1 and increases on spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }

    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Delete answers with the object (else with a `Status`).
    fn return_deleted_object(&self) -> bool {
        false
    }

    /// Grace period to apply on delete; 0 deletes at once. Upstream honours the request's
    /// gracePeriodSeconds only for kinds with a graceful-delete strategy (pods).
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> i64 {
        0
    }

    /// Refuses deleting objects the system depends on (system PriorityClasses).
    fn check_delete(&self, _obj: &Value) -> Result<(), StatusError> {
        Ok(())
    }

    /// Marks an object whose deletion must wait for something other than
    /// `metadata.finalizers` (namespaces wait for `spec.finalizers`); true keeps it stored.
    fn begin_delete(&self, _obj: &mut Value) -> bool {
        false
    }

    /// Whether something besides `metadata.finalizers` still holds a pending deletion
    /// (upstream's ShouldDeleteDuringUpdate: a namespace's `spec.finalizers`).
    fn holds_deletion(&self, _obj: &Value) -> bool {
        false
    }

    /// Extra table columns after NAME (upstream's printers); none = NAME + CREATED AT.
    fn table_columns(&self) -> Option<Vec<Column>> {
        None
    }

    fn table_row(&self, _obj: &Value) -> Vec<Value> {
        Vec::new()
    }

    /// Whether strategic merge patches apply (not to custom resources, as upstream).
    /// What an update through the status subresource may change besides `status`.
    fn status_metadata(&self) -> StatusMetadata {
        StatusMetadata::LabelsAndAnnotations
    }

    /// Whether objects read back get defaults applied (custom resources whose schema has
    /// defaults: upstream's decoder defaults what it reads from storage, so a default
    /// added to a CRD shows on objects stored before it).
    fn defaults_on_read(&self) -> bool {
        false
    }

    /// Applies those defaults to an object read from storage.
    fn read_defaults(&self, _obj: &mut Value) {}

    fn supports_strategic_merge_patch(&self) -> bool {
        true
    }

    /// The type's OpenAPI schemas (`kubectl explain`, client-side validation).
    fn openapi_schemas(&self) -> Option<crate::endpoints::openapi::SchemaSet> {
        None
    }

    /// Runs before the object is stored (e.g. allocate a ClusterIP). Not on dry runs.
    async fn before_create(&self, _obj: &mut Value) -> Result<(), StatusError> {
        Ok(())
    }

    /// Undoes `before_create` when the write did not happen.
    async fn create_failed(&self, _obj: &Value) {}

    /// Runs before an update is stored (e.g. allocate a NodePort for a type change).
    async fn before_update(&self, _new: &mut Value, _old: &Value) -> Result<(), StatusError> {
        Ok(())
    }

    /// Runs after the object left storage (e.g. release its ClusterIP).
    async fn after_delete(&self, _obj: &Value) {}
}
