//! ConfigMaps (upstream `pkg/registry/core/configmap`).

use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

/// Upstream's `MaxSecretSize`, shared by ConfigMaps and Secrets.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

pub fn validate_data_keys<'a>(
    field_base: &str,
    keys: impl Iterator<Item = &'a String>,
    total: usize,
    kind: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    for k in keys {
        for e in apimachinery::validation::config_map_key(k) {
            causes.push(Cause::invalid(&format!("{field_base}[{k}]"), &json!(k), &e));
        }
    }
    if total > MAX_DATA_SIZE {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {MAX_DATA_SIZE} bytes"),
            field: if kind == "Secret" {
                "data".into()
            } else {
                String::new()
            },
        });
    }
    causes
}

pub fn strategy() -> Typed<ConfigMap> {
    let mut i = info("", "v1", "ConfigMap", "configmaps", true, "configmaps");
    i.short_names = vec!["cm".into()];
    let mut t = Typed::new(i);
    t.validate = |cm: &ConfigMap| {
        let data = cm.data.as_ref();
        let bin = cm.binary_data.as_ref();
        let total = data
            .map(|d| d.iter().map(|(k, v)| k.len() + v.len()).sum())
            .unwrap_or(0)
            + bin
                .map(|d| d.iter().map(|(k, v)| k.len() + v.0.len()).sum())
                .unwrap_or(0);
        let mut c = validate_data_keys(
            "data",
            data.into_iter().flat_map(|d| d.keys()),
            total,
            "ConfigMap",
        );
        if let (Some(d), Some(b)) = (data, bin) {
            for k in d.keys().filter(|k| b.contains_key(*k)) {
                c.push(Cause::invalid(
                    &format!("data[{k}]"),
                    &json!(k),
                    "duplicate of key present in binaryData",
                ));
            }
        }
        c
    };
    // As upstream's ValidateConfigMapUpdate: every change an immutable object refuses.
    t.validate_update = |new, old| {
        const IMMUTABLE: &str = "field is immutable when `immutable` is set";
        let mut c = Vec::new();
        if old.immutable == Some(true) {
            if new.immutable != Some(true) {
                c.push(Cause::forbidden("immutable", IMMUTABLE));
            }
            if new.data != old.data {
                c.push(Cause::forbidden("data", IMMUTABLE));
            }
            if new.binary_data != old.binary_data {
                c.push(Cause::forbidden("binaryData", IMMUTABLE));
            }
        }
        c
    };
    t.columns = Some(|| {
        vec![
            crate::typed::col("Data", "string", "Data contains the configuration data.", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| {
        let n = o["data"].as_object().map(|m| m.len()).unwrap_or(0)
            + o["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
        vec![json!(n), crate::typed::age_cell(o)]
    };
    t
}
