//! Rules the DRA kinds share (upstream `pkg/apis/resource/validation`): device selectors
//! are CEL expressions that must compile, and device requests name a class and ask for
//! an exact count or all matching devices.

use apimachinery::Cause;
use apimachinery::validation::{dns1123_label, dns1123_subdomain};
use k8s_openapi::api::resource::v1::{DeviceClaim, DeviceSelector, ExactDeviceRequest};
use serde_json::json;

/// Upstream's limits.
const MAX_SELECTORS: usize = 32;
const MAX_REQUESTS: usize = 32;

pub fn selectors(field: &str, selectors: &[DeviceSelector]) -> Vec<Cause> {
    let mut c = Vec::new();
    if selectors.len() > MAX_SELECTORS {
        c.push(Cause::too_many(field, selectors.len(), MAX_SELECTORS));
    }
    for (i, s) in selectors.iter().enumerate() {
        let f = format!("{field}[{i}]");
        match &s.cel {
            None => c.push(Cause::required(&format!("{f}.cel"), "")),
            Some(cel) if cel.expression.trim().is_empty() => {
                c.push(Cause::required(&format!("{f}.cel.expression"), ""))
            }
            Some(cel) => {
                if let Err(e) = apiserver::admission::plugin::policy::cel::compile(&cel.expression)
                {
                    c.push(Cause::invalid(
                        &format!("{f}.cel.expression"),
                        &json!(cel.expression),
                        &e,
                    ));
                }
            }
        }
    }
    c
}

fn name(field: &str, v: &str, rule: fn(&str) -> Vec<String>) -> Vec<Cause> {
    if v.is_empty() {
        return vec![Cause::required(field, "")];
    }
    rule(v)
        .into_iter()
        .map(|e| Cause::invalid(field, &json!(v), &e))
        .collect()
}

/// `allocationMode` and `count` of a request (defaulted to ExactCount and 1).
fn mode(field: &str, mode: Option<&str>, count: Option<i64>) -> Vec<Cause> {
    match mode.unwrap_or("ExactCount") {
        "ExactCount" if count.unwrap_or(1) <= 0 => vec![Cause::invalid(
            &format!("{field}.count"),
            &json!(count),
            "must be greater than zero",
        )],
        "ExactCount" => Vec::new(),
        "All" if count.is_some() => vec![Cause::invalid(
            &format!("{field}.count"),
            &json!(count),
            "must not be specified when allocationMode is 'All'",
        )],
        "All" => Vec::new(),
        other => vec![Cause::not_supported(
            &format!("{field}.allocationMode"),
            &json!(other),
            &["All", "ExactCount"],
        )],
    }
}

fn exactly(field: &str, r: &ExactDeviceRequest) -> Vec<Cause> {
    let mut c = name(
        &format!("{field}.deviceClassName"),
        &r.device_class_name,
        dns1123_subdomain,
    );
    c.extend(selectors(
        &format!("{field}.selectors"),
        r.selectors.as_deref().unwrap_or_default(),
    ));
    c.extend(mode(field, r.allocation_mode.as_deref(), r.count));
    c
}

/// A claim's `devices`.
pub fn device_claim(field: &str, d: &DeviceClaim) -> Vec<Cause> {
    let requests = d.requests.as_deref().unwrap_or_default();
    let mut c = Vec::new();
    if requests.len() > MAX_REQUESTS {
        c.push(Cause::too_many(
            &format!("{field}.requests"),
            requests.len(),
            MAX_REQUESTS,
        ));
    }
    for (i, r) in requests.iter().enumerate() {
        let f = format!("{field}.requests[{i}]");
        c.extend(name(&format!("{f}.name"), &r.name, dns1123_label));
        if requests[..i].iter().any(|o| o.name == r.name) {
            c.push(Cause::duplicate(&format!("{f}.name"), &json!(r.name)));
        }
        match (&r.exactly, &r.first_available) {
            (Some(e), None) => c.extend(exactly(&format!("{f}.exactly"), e)),
            (None, Some(subs)) if !subs.is_empty() => {
                for (j, s) in subs.iter().enumerate() {
                    let sf = format!("{f}.firstAvailable[{j}]");
                    c.extend(name(&format!("{sf}.name"), &s.name, dns1123_label));
                    c.extend(name(
                        &format!("{sf}.deviceClassName"),
                        &s.device_class_name,
                        dns1123_subdomain,
                    ));
                    c.extend(selectors(
                        &format!("{sf}.selectors"),
                        s.selectors.as_deref().unwrap_or_default(),
                    ));
                    c.extend(mode(&sf, s.allocation_mode.as_deref(), s.count));
                }
            }
            _ => c.push(Cause::invalid(
                &f,
                &json!(null),
                "exactly one of `exactly` or `firstAvailable` is required",
            )),
        }
    }
    c
}

/// Upstream's defaults of a claim's requests.
pub fn default_device_claim(d: &mut DeviceClaim) {
    for r in d.requests.iter_mut().flatten() {
        if let Some(e) = r.exactly.as_mut() {
            let m = e.allocation_mode.get_or_insert_with(|| "ExactCount".into());
            if m == "ExactCount" {
                e.count.get_or_insert(1);
            }
        }
        for s in r.first_available.iter_mut().flatten() {
            let m = s.allocation_mode.get_or_insert_with(|| "ExactCount".into());
            if m == "ExactCount" {
                s.count.get_or_insert(1);
            }
        }
    }
}
