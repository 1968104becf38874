//! Secrets (upstream `pkg/registry/core/secret`).

use crate::typed::{Typed, immutable, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

pub fn strategy() -> Typed<Secret> {
    let i = info("", "v1", "Secret", "secrets", true, "secrets");
    let mut t = Typed::new(i);
    t.default = |s: &mut Secret| {
        if s.type_.as_deref().unwrap_or("").is_empty() {
            s.type_ = Some("Opaque".into());
        }
        // stringData is write-only: merged into data, never stored.
        if let Some(sd) = s.string_data.take() {
            let data = s.data.get_or_insert_with(Default::default);
            for (k, v) in sd {
                data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
            }
        }
    };
    t.fields = |o| {
        [(
            "type".to_string(),
            o["type"].as_str().unwrap_or_default().to_string(),
        )]
        .into_iter()
        .collect()
    };
    t.supported_fields = &["type"];
    t.validate = |s: &Secret| {
        let data = s.data.as_ref();
        let total = data
            .map(|d| d.iter().map(|(k, v)| k.len() + v.0.len()).sum())
            .unwrap_or(0);
        let mut c = crate::core::configmap::validate_data_keys(
            "data",
            data.into_iter().flat_map(|d| d.keys()),
            total,
            "Secret",
        );
        let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
        match s.type_.as_deref() {
            Some("kubernetes.io/tls") => {
                for k in ["tls.crt", "tls.key"] {
                    if !has(k) {
                        c.push(Cause::required(&format!("data[{k}]"), ""));
                    }
                }
            }
            Some("kubernetes.io/dockerconfigjson") if !has(".dockerconfigjson") => {
                c.push(Cause::required("data[.dockerconfigjson]", ""));
            }
            Some("kubernetes.io/basic-auth") if !has("username") && !has("password") => {
                c.push(Cause::required("data[username]", ""));
            }
            Some("kubernetes.io/ssh-auth") if !has("ssh-privatekey") => {
                c.push(Cause::required("data[ssh-privatekey]", ""))
            }
            _ => {}
        }
        c
    };
    const IMMUTABLE: &str = "field is immutable when `immutable` is set";
    t.validate_update = |new, old| {
        let mut c: Vec<Cause> = immutable("type", &json!(new.type_), &json!(old.type_))
            .into_iter()
            .collect();
        // As upstream's ValidateSecretUpdate (stringData is folded into data by now).
        if old.immutable == Some(true) {
            if new.immutable != Some(true) {
                c.push(Cause::forbidden("immutable", IMMUTABLE));
            }
            if new.data != old.data {
                c.push(Cause::forbidden("data", IMMUTABLE));
            }
        }
        c
    };
    t.columns = Some(|| {
        vec![
            crate::typed::col("Type", "string", "The type of the secret", 0),
            crate::typed::col("Data", "string", "The number of entries in the secret", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| {
        vec![
            o["type"].clone(),
            json!(o["data"].as_object().map(|m| m.len()).unwrap_or(0)),
            crate::typed::age_cell(o),
        ]
    };
    t
}
