//! APIServices (upstream `kube-aggregator/pkg/registry/apiservice` and
//! `pkg/apis/apiregistration/validation`): the name is `<version>.<group>`, the service
//! port defaults to 443, priorities lie in upstream's ranges, and a local APIService
//! (no service) carries no TLS settings. Printed as upstream's `kubectl get apiservices`.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use apimachinery::validation::{dns1035_label, dns1123_subdomain, path_segment_name};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde_json::{Value, json};

pub fn strategy() -> Typed<APIService> {
    let mut t = simple(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        false,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    t.info.categories = vec!["api-extensions".into()];
    t.name_rule = path_segment_name;
    t.default = |a: &mut APIService| {
        if let Some(svc) = a.spec.as_mut().and_then(|s| s.service.as_mut()) {
            svc.port.get_or_insert(443);
        }
    };
    t.validate = validate;
    t.validate_update = |_, _| Vec::new();
    t.columns = Some(|| {
        cols(&[
            ("Service", "string", 0),
            ("Available", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| vec![json!(service_column(o)), json!(available_column(o)), age(o)];
    t
}

/// `Local`, or `<namespace>/<name>` of the backing Service.
fn service_column(o: &Value) -> String {
    match o["spec"]["service"].as_object() {
        Some(s) => format!(
            "{}/{}",
            s.get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            s.get("name").and_then(Value::as_str).unwrap_or_default()
        ),
        None => "Local".into(),
    }
}

/// `True`, or `False (<Reason>)`, or `Unknown` before any check.
fn available_column(o: &Value) -> String {
    let cond = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Available");
    let Some(c) = cond else {
        return "Unknown".into();
    };
    let status = c["status"].as_str().unwrap_or("Unknown");
    match c["reason"].as_str().filter(|r| !r.is_empty()) {
        Some(reason) if status != "True" => format!("{status} ({reason})"),
        _ => status.into(),
    }
}

fn validate(a: &APIService) -> Vec<Cause> {
    let Some(spec) = &a.spec else {
        return vec![Cause::required("spec", "")];
    };
    let mut c = Vec::new();
    let required = format!(
        "{}.{}",
        spec.version.as_deref().unwrap_or_default(),
        spec.group.as_deref().unwrap_or_default()
    );
    let name = a.metadata.name.as_deref().unwrap_or_default();
    if name != required {
        c.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            &format!("must be `spec.version+\".\"+spec.group`: {required:?}"),
        ));
    }
    let group = spec.group.as_deref().unwrap_or_default();
    let version = spec.version.as_deref().unwrap_or_default();
    if group.is_empty() && version != "v1" {
        c.push(Cause::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for e in dns1123_subdomain(group) {
            c.push(Cause::invalid("spec.group", &json!(group), &e));
        }
    }
    for e in dns1035_label(version) {
        c.push(Cause::invalid("spec.version", &json!(version), &e));
    }
    if !(1..=20000).contains(&spec.group_priority_minimum) {
        c.push(Cause::invalid(
            "spec.groupPriorityMinimum",
            &json!(spec.group_priority_minimum),
            "must be positive and less than 20000",
        ));
    }
    if !(1..=1000).contains(&spec.version_priority) {
        c.push(Cause::invalid(
            "spec.versionPriority",
            &json!(spec.version_priority),
            "must be positive and less than 1000",
        ));
    }
    let insecure = spec.insecure_skip_tls_verify.unwrap_or(false);
    let ca_len = spec.ca_bundle.as_ref().map_or(0, |b| b.0.len());
    let Some(svc) = &spec.service else {
        if ca_len > 0 {
            c.push(Cause::invalid(
                "spec.caBundle",
                &json!(format!("{ca_len} bytes")),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            c.push(Cause::invalid(
                "spec.insecureSkipTLSVerify",
                &json!(true),
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return c;
    };
    if svc.namespace.as_deref().unwrap_or_default().is_empty() {
        c.push(Cause::required("spec.service.namespace", ""));
    }
    if svc.name.as_deref().unwrap_or_default().is_empty() {
        c.push(Cause::required("spec.service.name", ""));
    }
    let port = svc.port.unwrap_or(443);
    if !(1..=65535).contains(&port) {
        c.push(Cause::invalid(
            "spec.service.port",
            &json!(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    if insecure && ca_len > 0 {
        c.push(Cause::invalid(
            "spec.insecureSkipTLSVerify",
            &json!(true),
            "may not be true if caBundle is present",
        ));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(name: &str, spec: Value) -> APIService {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    }

    #[test]
    fn validation_follows_upstream() {
        let remote = json!({"group": "wardle.example.com", "version": "v1alpha1", "groupPriorityMinimum": 1000, "versionPriority": 15,
            "service": {"namespace": "wardle", "name": "api"}, "insecureSkipTLSVerify": true});
        let cases: Vec<(&str, APIService, Vec<&str>)> = vec![
            (
                "remote ok",
                api("v1alpha1.wardle.example.com", remote.clone()),
                vec![],
            ),
            (
                "name mismatch",
                api("v1.wardle.example.com", remote.clone()),
                vec!["metadata.name"],
            ),
            (
                "priorities out of range",
                api(
                    "v1.x.io",
                    json!({"group": "x.io", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 1001}),
                ),
                vec!["spec.groupPriorityMinimum", "spec.versionPriority"],
            ),
            (
                "local with TLS settings",
                api(
                    "v1.x.io",
                    json!({"group": "x.io", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1, "insecureSkipTLSVerify": true}),
                ),
                vec!["spec.insecureSkipTLSVerify"],
            ),
            (
                "empty group only for v1",
                api(
                    "v2.",
                    json!({"group": "", "version": "v2", "groupPriorityMinimum": 1, "versionPriority": 1}),
                ),
                vec!["spec.group"],
            ),
        ];
        for (name, a, want) in cases {
            let got: Vec<String> = validate(&a).into_iter().map(|c| c.field).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn columns_print_as_upstream() {
        let o = json!({"spec": {"service": {"namespace": "wardle", "name": "api"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "ServiceNotFound"}]}});
        assert_eq!(service_column(&o), "wardle/api");
        assert_eq!(available_column(&o), "False (ServiceNotFound)");
        let local = json!({"spec": {}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        assert_eq!(
            (
                service_column(&local).as_str(),
                available_column(&local).as_str()
            ),
            ("Local", "True")
        );
        assert_eq!(available_column(&json!({})), "Unknown");
    }
}
