//! Versions served from another version's storage (upstream serves every version of a
//! group from one storage version and converts at the edge): `autoscaling/v1` HPAs over
//! `autoscaling/v2`, `events.k8s.io/v1` Events over core `v1`, CustomResource versions.

use crate::registry::strategy::{Column, ResourceInfo};
use apimachinery::StatusError;
use serde_json::Value;

pub trait VersionView: Send + Sync {
    /// The served identity (group/version/kind, plural, short names, subresources).
    fn info(&self) -> &ResourceInfo;

    /// A request body in the served version to the stored version.
    fn to_storage(&self, obj: Value) -> Result<Value, StatusError>;

    /// A stored object to the served version (a conversion webhook may fail).
    fn to_served(&self, obj: &Value) -> Result<Value, StatusError>;

    /// Stored objects to the served version (a list converts in one webhook call).
    fn to_served_list(&self, objs: &[&Value]) -> Result<Vec<Value>, StatusError> {
        objs.iter().map(|o| self.to_served(o)).collect()
    }

    /// Printer columns of this version, when they differ from the storage strategy's.
    fn table_columns(&self) -> Option<Vec<Column>> {
        None
    }

    fn table_row(&self, _obj: &Value) -> Vec<Value> {
        Vec::new()
    }

    /// The served version's schemas.
    fn openapi_schemas(&self) -> Option<crate::endpoints::openapi::SchemaSet> {
        None
    }

    /// A field selector label of the served version as the stored version names it.
    fn field_label(&self, label: &str) -> String {
        label.to_string()
    }

    /// Whether the view defines its own printer columns.
    fn prints(&self) -> bool {
        false
    }
}
