//! ServiceAccounts (upstream `pkg/registry/core/serviceaccount`).

use crate::typed::{Typed, info};
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::json;

pub fn strategy() -> Typed<ServiceAccount> {
    let mut i = info(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        "serviceaccounts",
    );
    i.short_names = vec!["sa".into()];
    let mut t = Typed::new(i);
    t.columns = Some(|| {
        vec![
            crate::typed::col("Secrets", "string", "", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| {
        vec![
            json!(o["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            crate::typed::age_cell(o),
        ]
    };
    t
}
