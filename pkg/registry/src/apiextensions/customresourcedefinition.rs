//! CustomResourceDefinitions (upstream `apiextensions-apiserver/pkg/registry/
//! customresourcedefinition` and `apis/apiextensions/validation`): names, versions and
//! structural schemas checked on write; deletion waits for the cleanup finalizer.

use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// A structural schema specifies a type for every field it names (upstream
/// `structuralschema.ValidateStructural`, the most common of its rules).
fn structural(s: &Value, path: &str, out: &mut Vec<Cause>) {
    let typed = s
        .get("type")
        .is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty()));
    let exempt = s["x-kubernetes-int-or-string"] == true
        || s["x-kubernetes-preserve-unknown-fields"] == true;
    if !typed && !exempt {
        out.push(Cause::required(
            &format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    }
    for (k, p) in s["properties"].as_object().into_iter().flatten() {
        structural(p, &format!("{path}.properties[{k}]"), out);
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        structural(items, &format!("{path}.items"), out);
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
        if s.get("properties").is_some() {
            out.push(Cause::forbidden(
                &format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        structural(ap, &format!("{path}.additionalProperties"), out);
    }
}

/// Upstream's `validateCustomResourceConversion`: a `Webhook` strategy needs the webhook
/// (one of `url` or `service`, review versions including v1 or v1beta1) and pruning; `None`
/// takes no webhook.
fn validate_conversion(
    conv: Option<&k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceConversion>,
    preserve_unknown_fields: bool,
) -> Vec<Cause> {
    let Some(conv) = conv else {
        return Vec::new();
    };
    let mut c = Vec::new();
    match conv.strategy.as_str() {
        "None" => {
            if conv.webhook.is_some() {
                c.push(Cause::forbidden(
                    "spec.conversion.webhook",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        "Webhook" => {
            if preserve_unknown_fields {
                c.push(Cause::invalid(
                    "spec.conversion.strategy",
                    &json!(conv.strategy),
                    "must be None if spec.preserveUnknownFields is true",
                ));
            }
            let Some(w) = &conv.webhook else {
                c.push(Cause::required(
                    "spec.conversion.webhook",
                    "required when strategy is set to Webhook",
                ));
                return c;
            };
            let versions = &w.conversion_review_versions;
            if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
                c.push(Cause::invalid(
                    "spec.conversion.webhook.conversionReviewVersions",
                    &json!(versions),
                    "must include at least one of v1, v1beta1",
                ));
            }
            match &w.client_config {
                None => c.push(Cause::required(
                    "spec.conversion.webhook.clientConfig",
                    "required when strategy is set to Webhook",
                )),
                Some(cc) => match (&cc.url, &cc.service) {
                    (Some(_), Some(_)) | (None, None) => c.push(Cause::required(
                        "spec.conversion.webhook.clientConfig",
                        "exactly one of url or service is required",
                    )),
                    (Some(url), None) if !url.starts_with("https://") => c.push(Cause::invalid(
                        "spec.conversion.webhook.clientConfig.url",
                        &json!(url),
                        "'https' is the only allowed URL scheme",
                    )),
                    (None, Some(svc)) if svc.name.is_empty() || svc.namespace.is_empty() => {
                        c.push(Cause::required(
                            "spec.conversion.webhook.clientConfig.service",
                            "service name and namespace are required",
                        ))
                    }
                    _ => {}
                },
            }
        }
        other => c.push(Cause::not_supported(
            "spec.conversion.strategy",
            &json!(other),
            &["None", "Webhook"],
        )),
    }
    c
}

fn validate(crd: &CustomResourceDefinition) -> Vec<Cause> {
    let mut c = Vec::new();
    let spec = &crd.spec;
    let names = &spec.names;
    let name = crd.metadata.name.as_deref().unwrap_or_default();
    if name != format!("{}.{}", names.plural, spec.group) {
        c.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec.group.is_empty() {
        c.push(Cause::required("spec.group", ""));
    } else if !spec.group.contains('.') {
        c.push(Cause::invalid(
            "spec.group",
            &json!(spec.group),
            "should be a domain with at least one dot",
        ));
    }
    for (field, v) in [
        ("spec.names.plural", &names.plural),
        (
            "spec.names.singular",
            names.singular.as_ref().unwrap_or(&String::new()),
        ),
    ] {
        if field.ends_with("plural") && v.is_empty() {
            c.push(Cause::required(field, ""));
        }
        for e in apimachinery::validation::dns1035_label(v)
            .into_iter()
            .filter(|_| !v.is_empty())
        {
            c.push(Cause::invalid(field, &json!(v), &e));
        }
    }
    if names.kind.is_empty() {
        c.push(Cause::required("spec.names.kind", ""));
    }
    c.extend(validate_conversion(
        spec.conversion.as_ref(),
        spec.preserve_unknown_fields.unwrap_or(false),
    ));
    match spec.scope.as_str() {
        "Namespaced" | "Cluster" => {}
        other => c.push(Cause::not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    if spec.versions.is_empty() {
        c.push(Cause::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = spec.versions.iter().filter(|v| v.storage).count();
    if !spec.versions.is_empty() && storage != 1 {
        c.push(Cause::invalid(
            "spec.versions",
            &json!(spec.versions.iter().map(|v| &v.name).collect::<Vec<_>>()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !spec.versions.is_empty() && !spec.versions.iter().any(|v| v.served) {
        c.push(Cause::invalid(
            "spec.versions",
            &json!(spec.versions.iter().map(|v| &v.name).collect::<Vec<_>>()),
            "must have at least one version marked as served",
        ));
    }
    for (i, v) in spec.versions.iter().enumerate() {
        let f = format!("spec.versions[{i}]");
        for e in apimachinery::validation::dns1035_label(&v.name) {
            c.push(Cause::invalid(&format!("{f}.name"), &json!(v.name), &e));
        }
        if spec.versions[..i].iter().any(|o| o.name == v.name) {
            c.push(Cause::duplicate(&format!("{f}.name"), &json!(v.name)));
        }
        let schema = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        match schema {
            None => c.push(Cause::required(
                &format!("{f}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(s) => {
                let s = serde_json::to_value(s).unwrap_or_default();
                let root = format!("{f}.schema.openAPIV3Schema");
                if s["type"] != "object" {
                    c.push(Cause::invalid(
                        &format!("{root}.type"),
                        &s["type"],
                        "must be object at the root",
                    ));
                }
                structural(&s, &root, &mut c);
                apiextensions_apiserver::schema::cel::compile_errors(&s, &root, &mut c);
            }
        }
        for (j, col) in v.additional_printer_columns.iter().flatten().enumerate() {
            let cf = format!("{f}.additionalPrinterColumns[{j}]");
            if !matches!(
                col.type_.as_str(),
                "integer" | "number" | "string" | "boolean" | "date"
            ) {
                c.push(Cause::not_supported(
                    &format!("{cf}.type"),
                    &json!(col.type_),
                    &["integer", "number", "string", "boolean", "date"],
                ));
            }
            if col.json_path.is_empty() {
                c.push(Cause::required(&format!("{cf}.JSONPath"), ""));
            }
        }
    }
    c
}

pub fn strategy() -> Typed<CustomResourceDefinition> {
    let mut t = simple(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
    );
    t.info.categories = vec!["api-extensions".into()];
    t.info.subresources = vec!["status".into()];
    t.tracks_generation = true;
    t.default = |crd: &mut CustomResourceDefinition| {
        let names = &mut crd.spec.names;
        if names.singular.as_deref().unwrap_or_default().is_empty() {
            names.singular = Some(names.kind.to_lowercase());
        }
        if names.list_kind.as_deref().unwrap_or_default().is_empty() {
            names.list_kind = Some(format!("{}List", names.kind));
        }
        if crd.spec.conversion.is_none() {
            crd.spec.conversion = Some(Default::default());
        }
        if let Some(conv) = crd.spec.conversion.as_mut()
            && conv.strategy.is_empty()
        {
            conv.strategy = "None".into();
        }
    };
    t.prepare_for_create = |obj| {
        obj["status"] = json!({});
    };
    t.validate = validate;
    t.validate_update = |n, o| {
        let mut c: Vec<Cause> = immutable("spec.group", &json!(n.spec.group), &json!(o.spec.group))
            .into_iter()
            .collect();
        c.extend(immutable(
            "spec.scope",
            &json!(n.spec.scope),
            &json!(o.spec.scope),
        ));
        c
    };
    t.begin_delete = |obj| {
        let m = obj["metadata"].as_object_mut();
        if let Some(m) = m {
            let f = m.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = f.as_array_mut()
                && !a.iter().any(|x| x == CLEANUP_FINALIZER)
            {
                a.push(json!(CLEANUP_FINALIZER));
            }
        }
        // Upstream marks the CRD Terminating while its objects are deleted.
        let mut conds: Vec<Value> = obj["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "Terminating")
            .collect();
        conds.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
            "message": "CustomResource deletion is in progress", "lastTransitionTime": apiserver::registry::meta::now_rfc3339()}));
        obj["status"]["conditions"] = json!(conds);
        true
    };
    t
}
