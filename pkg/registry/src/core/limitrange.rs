//! LimitRanges (upstream `pkg/registry/core/limitrange` and the v1 defaults).

use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::core::v1::LimitRange;
use serde_json::json;

pub fn strategy() -> Typed<LimitRange> {
    let mut i = info("", "v1", "LimitRange", "limitranges", true, "limitranges");
    i.short_names = vec!["limits".into()];
    let mut t = Typed::new(i);
    // Container limits: a missing default is the max, a missing defaultRequest is the
    // default (else the min), as upstream's SetDefaults_LimitRangeItem.
    t.default = |lr: &mut LimitRange| {
        for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            if item.type_ != "Container" {
                continue;
            }
            let max = item.max.clone().unwrap_or_default();
            let min = item.min.clone().unwrap_or_default();
            let default = item.default.get_or_insert_with(Default::default);
            for (k, v) in &max {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let default = default.clone();
            let req = item.default_request.get_or_insert_with(Default::default);
            for (k, v) in default.iter().chain(min.iter()) {
                req.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if item.default.as_ref().is_some_and(|d| d.is_empty()) {
                item.default = None;
            }
            if item.default_request.as_ref().is_some_and(|d| d.is_empty()) {
                item.default_request = None;
            }
        }
    };
    t.validate = |lr: &LimitRange| {
        let mut c = Vec::new();
        for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            if !matches!(
                item.type_.as_str(),
                "Container" | "Pod" | "PersistentVolumeClaim"
            ) && !item.type_.contains('/')
            {
                c.push(Cause::not_supported(
                    &format!("spec.limits[{i}].type"),
                    &json!(item.type_),
                    &["Container", "Pod", "PersistentVolumeClaim"],
                ));
            }
        }
        c
    };
    t
}
