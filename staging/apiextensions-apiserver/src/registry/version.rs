//! A served CRD version other than the storage version. With `conversion.strategy: None`
//! upstream converts by rewriting `apiVersion` only; with `Webhook` the CRD's conversion
//! webhook converts. The request is pruned and defaulted with the served version's schema
//! first; what is read is defaulted with it after conversion.

use super::customresource::CustomResourceStrategy;
use apimachinery::StatusError;
use apiserver::endpoints::openapi::SchemaSet;
use apiserver::endpoints::view::VersionView;
use apiserver::registry::strategy::{Column, ResourceInfo, Strategy};
use serde_json::{Value, json};

pub struct ServedVersion {
    pub served: CustomResourceStrategy,
    pub storage_api_version: String,
    pub webhook: Option<std::sync::Arc<crate::conversion::Webhook>>,
}

impl ServedVersion {
    fn defaulted(&self, mut out: Value) -> Value {
        if self.served.has_defaults {
            self.served.read_defaults(&mut out);
        }
        out
    }
}

impl VersionView for ServedVersion {
    fn info(&self) -> &ResourceInfo {
        &self.served.info
    }

    fn to_storage(&self, mut obj: Value) -> Result<Value, StatusError> {
        self.served.normalize(&mut obj);
        if let Some(w) = &self.webhook {
            let mut out = w.convert(&[&obj], &self.storage_api_version)?;
            return Ok(out.pop().unwrap_or(obj));
        }
        obj["apiVersion"] = json!(self.storage_api_version);
        Ok(obj)
    }

    /// Read defaulting with the served version's schema, as upstream's decoder does
    /// after conversion.
    fn to_served(&self, obj: &Value) -> Result<Value, StatusError> {
        let mut out = self.to_served_list(&[obj])?;
        Ok(out.pop().unwrap_or_default())
    }

    fn to_served_list(&self, objs: &[&Value]) -> Result<Vec<Value>, StatusError> {
        let served = self.served.info.gvk.api_version();
        let converted = match &self.webhook {
            Some(w) => w.convert(objs, &served)?,
            None => objs
                .iter()
                .map(|o| {
                    let mut out = (*o).clone();
                    out["apiVersion"] = json!(served);
                    out
                })
                .collect(),
        };
        Ok(converted.into_iter().map(|o| self.defaulted(o)).collect())
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
