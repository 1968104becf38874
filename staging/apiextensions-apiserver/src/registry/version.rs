//! A served CRD version other than the storage version. With `conversion.strategy: None`
//! upstream converts by rewriting `apiVersion` only; the request is pruned and defaulted
//! with the served version's schema first.

use super::customresource::CustomResourceStrategy;
use apimachinery::StatusError;
use apiserver::endpoints::openapi::SchemaSet;
use apiserver::endpoints::view::VersionView;
use apiserver::registry::strategy::{Column, ResourceInfo, Strategy};
use serde_json::{Value, json};

pub struct ServedVersion {
    pub served: CustomResourceStrategy,
    pub storage_api_version: String,
}

impl VersionView for ServedVersion {
    fn info(&self) -> &ResourceInfo {
        &self.served.info
    }

    fn to_storage(&self, mut obj: Value) -> Result<Value, StatusError> {
        self.served.normalize(&mut obj);
        obj["apiVersion"] = json!(self.storage_api_version);
        Ok(obj)
    }

    /// Read defaulting with the served version's schema, as upstream's decoder does
    /// after conversion.
    fn to_served(&self, obj: &Value) -> Value {
        let mut out = obj.clone();
        out["apiVersion"] = json!(self.served.info.gvk.api_version());
        if self.served.has_defaults {
            self.served.read_defaults(&mut out);
        }
        out
    }

    fn table_columns(&self) -> Option<Vec<Column>> {
        self.served.table_columns()
    }

    fn table_row(&self, obj: &Value) -> Vec<Value> {
        self.served.table_row(obj)
    }

    fn prints(&self) -> bool {
        true
    }

    fn openapi_schemas(&self) -> Option<SchemaSet> {
        self.served.openapi_schemas()
    }
}
