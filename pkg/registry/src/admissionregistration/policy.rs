//! ValidatingAdmissionPolicies and their bindings (upstream
//! `pkg/registry/admissionregistration/validatingadmissionpolicy[binding]`).

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

pub fn policy() -> Typed<ValidatingAdmissionPolicy> {
    let mut t = simple(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
        &[],
    );
    t.info.categories = vec!["api-extensions".into()];
    t.info.subresources = vec!["status".into()];
    t.tracks_generation = true;
    t.default = |p: &mut ValidatingAdmissionPolicy| {
        let Some(spec) = p.spec.as_mut() else { return };
        spec.failure_policy.get_or_insert_with(|| "Fail".into());
        if let Some(mc) = spec.match_constraints.as_mut() {
            mc.match_policy.get_or_insert_with(|| "Equivalent".into());
            mc.namespace_selector
                .get_or_insert_with(LabelSelector::default);
            mc.object_selector
                .get_or_insert_with(LabelSelector::default);
            for r in mc.resource_rules.iter_mut().flatten() {
                r.scope.get_or_insert_with(|| "*".into());
            }
        }
    };
    t.validate = |p: &ValidatingAdmissionPolicy| {
        let Some(spec) = &p.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if spec.validations.as_ref().is_none_or(|v| v.is_empty())
            && spec.audit_annotations.as_ref().is_none_or(|a| a.is_empty())
        {
            c.push(Cause::required(
                "spec.validations",
                "validations or auditAnnotations must contain at least one item",
            ));
        }
        for (i, v) in spec.validations.iter().flatten().enumerate() {
            if v.expression.trim().is_empty() {
                c.push(Cause::required(
                    &format!("spec.validations[{i}].expression"),
                    "",
                ));
            }
        }
        if spec.match_constraints.is_none() {
            c.push(Cause::required("spec.matchConstraints", ""));
        }
        if let Some(p) = spec
            .failure_policy
            .as_deref()
            .filter(|p| !matches!(*p, "Ignore" | "Fail"))
        {
            c.push(Cause::not_supported(
                "spec.failurePolicy",
                &json!(p),
                &["Fail", "Ignore"],
            ));
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Validations", "integer", 0),
            ("ParamKind", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let pk = &o["spec"]["paramKind"];
        let param_kind = match pk["kind"].as_str() {
            Some(k) => format!("{}/{}", pk["apiVersion"].as_str().unwrap_or_default(), k),
            None => "<unset>".into(),
        };
        vec![
            json!(
                o["spec"]["validations"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0)
            ),
            json!(param_kind),
            age(o),
        ]
    };
    t
}

pub fn binding() -> Typed<ValidatingAdmissionPolicyBinding> {
    let mut t = simple(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
        &[],
    );
    t.info.categories = vec!["api-extensions".into()];
    t.tracks_generation = true;
    t.validate = |b: &ValidatingAdmissionPolicyBinding| {
        let Some(spec) = &b.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if spec.policy_name.as_deref().unwrap_or_default().is_empty() {
            c.push(Cause::required("spec.policyName", ""));
        }
        match spec.validation_actions.as_deref() {
            None | Some([]) => c.push(Cause::required("spec.validationActions", "")),
            Some(actions) => {
                for (i, a) in actions.iter().enumerate() {
                    if !matches!(a.as_str(), "Deny" | "Warn" | "Audit") {
                        c.push(Cause::not_supported(
                            &format!("spec.validationActions[{i}]"),
                            &json!(a),
                            &["Audit", "Deny", "Warn"],
                        ));
                    }
                }
            }
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("PolicyName", "string", 0),
            ("ParamRef", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let pr = &o["spec"]["paramRef"];
        let param_ref = if pr.is_object() {
            match (pr["namespace"].as_str(), pr["name"].as_str()) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                (None, Some(n)) => format!("*/{n}"),
                _ => "*/*".into(),
            }
        } else {
            "<unset>".into()
        };
        vec![o["spec"]["policyName"].clone(), json!(param_ref), age(o)]
    };
    t
}
