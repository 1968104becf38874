//! Mutating and validating webhook configurations (upstream
//! `pkg/registry/admissionregistration/{mutating,validating}webhookconfiguration` and the
//! v1 defaults): failurePolicy Fail, matchPolicy Equivalent, timeoutSeconds 10, empty
//! selectors, rule scope `*`.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

fn default_rules(rules: &mut Option<Vec<RuleWithOperations>>) {
    for r in rules.iter_mut().flatten() {
        r.scope.get_or_insert_with(|| "*".into());
    }
}

/// Rules every webhook has, whichever kind of configuration holds it (on JSON, since
/// mutating and validating webhooks are distinct types).
fn validate_hooks(webhooks: &Value) -> Vec<Cause> {
    let hooks: Vec<&Value> = webhooks.as_array().into_iter().flatten().collect();
    let mut c = Vec::new();
    for (i, h) in hooks.iter().enumerate() {
        let name = h["name"].as_str().unwrap_or_default();
        let f = format!("webhooks[{i}]");
        if name.is_empty() {
            c.push(Cause::required(&format!("{f}.name"), ""));
        } else if name.split('.').count() < 3 {
            c.push(Cause::invalid(
                &format!("{f}.name"),
                &json!(name),
                "should be a domain with at least three segments separated by dots",
            ));
        } else {
            for e in apimachinery::validation::dns1123_subdomain(name) {
                c.push(Cause::invalid(&format!("{f}.name"), &json!(name), &e));
            }
        }
        if hooks[..i].iter().any(|o| o["name"] == h["name"]) {
            c.push(Cause::duplicate(&format!("{f}.name"), &json!(name)));
        }
        let client = &h["clientConfig"];
        match (client["url"].as_str(), client["service"].is_object()) {
            (Some(_), true) | (None, false) => c.push(Cause::required(
                &format!("{f}.clientConfig"),
                "exactly one of url or service is required",
            )),
            (Some(url), false) if !url.starts_with("https://") => c.push(Cause::invalid(
                &format!("{f}.clientConfig.url"),
                &json!(url),
                "'https' is the only allowed URL scheme",
            )),
            _ => {}
        }
        match h["sideEffects"].as_str().unwrap_or_default() {
            "None" | "NoneOnDryRun" => {}
            "" => c.push(Cause::required(&format!("{f}.sideEffects"), "")),
            other => c.push(Cause::not_supported(
                &format!("{f}.sideEffects"),
                &json!(other),
                &["None", "NoneOnDryRun"],
            )),
        }
        if h["admissionReviewVersions"]
            .as_array()
            .is_none_or(|v| v.is_empty())
        {
            c.push(Cause::required(
                &format!("{f}.admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            ));
        }
        if let Some(t) = h["timeoutSeconds"]
            .as_i64()
            .filter(|t| !(1..=30).contains(t))
        {
            c.push(Cause::invalid(
                &format!("{f}.timeoutSeconds"),
                &json!(t),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        c.extend(validate_match_conditions(&f, &h["matchConditions"]));
        if let Some(p) = h["failurePolicy"]
            .as_str()
            .filter(|p| !matches!(*p, "Ignore" | "Fail"))
        {
            c.push(Cause::not_supported(
                &format!("{f}.failurePolicy"),
                &json!(p),
                &["Fail", "Ignore"],
            ));
        }
    }
    c
}

/// Upstream's `validateMatchConditions`: at most 64, names unique qualified names,
/// expressions that compile.
fn validate_match_conditions(f: &str, conditions: &Value) -> Vec<Cause> {
    let list: Vec<&Value> = conditions.as_array().into_iter().flatten().collect();
    let mut c = Vec::new();
    if list.len() > 64 {
        c.push(Cause::too_many(
            &format!("{f}.matchConditions"),
            list.len(),
            64,
        ));
    }
    for (j, mc) in list.iter().enumerate() {
        let at = format!("{f}.matchConditions[{j}]");
        let name = mc["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            c.push(Cause::required(&format!("{at}.name"), ""));
        } else {
            for e in apimachinery::validation::qualified_name(name) {
                c.push(Cause::invalid(&format!("{at}.name"), &json!(name), &e));
            }
            if list[..j].iter().any(|o| o["name"] == mc["name"]) {
                c.push(Cause::duplicate(&format!("{at}.name"), &json!(name)));
            }
        }
        let expression = mc["expression"].as_str().unwrap_or_default();
        if expression.trim().is_empty() {
            c.push(Cause::required(&format!("{at}.expression"), ""));
        } else if let Err(e) = apiserver::admission::plugin::policy::cel::compile(expression) {
            c.push(Cause::invalid(
                &format!("{at}.expression"),
                &json!(expression),
                &e,
            ));
        }
    }
    c
}

fn columns() -> Vec<apiserver::registry::strategy::Column> {
    cols(&[("Webhooks", "integer", 0), ("Age", "string", 0)])
}

fn row(o: &Value) -> Vec<Value> {
    vec![
        json!(o["webhooks"].as_array().map(Vec::len).unwrap_or(0)),
        age(o),
    ]
}

pub fn mutating() -> Typed<MutatingWebhookConfiguration> {
    let mut t = simple(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        &[],
    );
    t.info.categories = vec!["api-extensions".into()];
    t.default = |m: &mut MutatingWebhookConfiguration| {
        for w in m.webhooks.iter_mut().flatten() {
            w.failure_policy.get_or_insert_with(|| "Fail".into());
            w.match_policy.get_or_insert_with(|| "Equivalent".into());
            w.timeout_seconds.get_or_insert(10);
            w.reinvocation_policy.get_or_insert_with(|| "Never".into());
            w.namespace_selector
                .get_or_insert_with(LabelSelector::default);
            w.object_selector.get_or_insert_with(LabelSelector::default);
            default_rules(&mut w.rules);
        }
    };
    t.validate = |m: &MutatingWebhookConfiguration| validate_hooks(&json!(m.webhooks));
    t.columns = Some(columns);
    t.row = row;
    t
}

pub fn validating() -> Typed<ValidatingWebhookConfiguration> {
    let mut t = simple(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        &[],
    );
    t.info.categories = vec!["api-extensions".into()];
    t.default = |m: &mut ValidatingWebhookConfiguration| {
        for w in m.webhooks.iter_mut().flatten() {
            w.failure_policy.get_or_insert_with(|| "Fail".into());
            w.match_policy.get_or_insert_with(|| "Equivalent".into());
            w.timeout_seconds.get_or_insert(10);
            w.namespace_selector
                .get_or_insert_with(LabelSelector::default);
            w.object_selector.get_or_insert_with(LabelSelector::default);
            default_rules(&mut w.rules);
        }
    };
    t.validate = |m: &ValidatingWebhookConfiguration| validate_hooks(&json!(m.webhooks));
    t.columns = Some(columns);
    t.row = row;
    t
}
