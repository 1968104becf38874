//! The `authorization.k8s.io/v1` group: access reviews answered by the authorizer chain
//! (upstream `pkg/registry/authorization`), never stored. `kubectl auth can-i` sends
//! SelfSubjectAccessReviews (`--list`: SelfSubjectRulesReviews) as protobuf, transcoded
//! to JSON before they get here.

use crate::typed::{Typed, simple};
use apimachinery::{Cause, StatusError};
use apiserver::authentication::UserInfo;
use apiserver::authorization::{Attributes, Chain};
use apiserver::endpoints::VirtualRest;
use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use plugin::auth::authorizer::rbac::Rbac;
use serde_json::{Value, json};
use std::sync::Arc;

const GROUP: &str = "authorization.k8s.io";

pub fn self_subject_access_review() -> Typed<SelfSubjectAccessReview> {
    simple(
        GROUP,
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        &[],
    )
}

pub fn self_subject_rules_review() -> Typed<SelfSubjectRulesReview> {
    simple(
        GROUP,
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        &[],
    )
}

pub fn local_subject_access_review() -> Typed<LocalSubjectAccessReview> {
    simple(
        GROUP,
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
        &[],
    )
}

pub fn subject_access_review() -> Typed<SubjectAccessReview> {
    simple(
        GROUP,
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
        &[],
    )
}

fn attributes(spec: &Value, user: &UserInfo) -> Attributes {
    let r = &spec["resourceAttributes"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if r.is_object() {
        Attributes {
            user: user.clone(),
            verb: s(&r["verb"]),
            resource_request: true,
            api_group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
            path: String::new(),
        }
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes {
            user: user.clone(),
            verb: s(&n["verb"]),
            path: s(&n["path"]),
            ..Default::default()
        }
    }
}

/// Upstream's `ValidateSubjectAccessReviewSpec` (and the self/local variants): exactly
/// one kind of attributes; a subject for the non-self reviews; local reviews resource
/// attributes only.
fn validate(kind: &str, spec: &Value) -> Result<(), StatusError> {
    let resource = spec["resourceAttributes"].is_object();
    let non_resource = spec["nonResourceAttributes"].is_object();
    let mut causes = Vec::new();
    if resource && non_resource {
        causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "cannot be specified in combination with resourceAttributes",
        ));
    } else if !resource && !non_resource {
        causes.push(Cause::invalid(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if kind == "LocalSubjectAccessReview" && non_resource {
        causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "disallowed on this kind of request",
        ));
    }
    let no_groups = spec["groups"].as_array().is_none_or(|g| g.is_empty());
    if !kind.starts_with("Self")
        && spec["user"].as_str().unwrap_or_default().is_empty()
        && no_groups
    {
        causes.push(Cause::invalid(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(StatusError::invalid(GROUP, kind, "", causes))
    }
}

/// The subject a (local) SubjectAccessReview asks about.
fn subject(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(String::from))
            .collect()
    };
    UserInfo {
        name: spec["user"].as_str().unwrap_or_default().to_string(),
        uid: spec["uid"].as_str().unwrap_or_default().to_string(),
        groups: strings(&spec["groups"]),
        extra: spec["extra"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), strings(v)))
            .collect(),
    }
}

fn review(kind: &str, spec: &Value, allowed: bool) -> Value {
    let mut status = json!({"allowed": allowed});
    if allowed {
        status["reason"] = json!("allowed by the authorizer chain");
    }
    json!({"kind": kind, "apiVersion": "authorization.k8s.io/v1", "metadata": {}, "spec": spec, "status": status})
}

/// `kubectl auth can-i`: may the caller do this?
pub struct SelfSubjectAccessReviews {
    pub authorizer: Arc<Chain>,
}

#[async_trait]
impl VirtualRest for SelfSubjectAccessReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        _ns: Option<&str>,
        body: Value,
        user: &UserInfo,
    ) -> Result<Value, StatusError> {
        let spec = &body["spec"];
        validate("SelfSubjectAccessReview", spec)?;
        let allowed = self
            .authorizer
            .authorize(&attributes(spec, user))
            .await
            .is_ok();
        Ok(review("SelfSubjectAccessReview", spec, allowed))
    }
}

/// SubjectAccessReview: may the given user (spec.user/groups) do this?
pub struct SubjectAccessReviews {
    pub authorizer: Arc<Chain>,
}

#[async_trait]
impl VirtualRest for SubjectAccessReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        _ns: Option<&str>,
        body: Value,
        _caller: &UserInfo,
    ) -> Result<Value, StatusError> {
        let spec = &body["spec"];
        validate("SubjectAccessReview", spec)?;
        let allowed = self
            .authorizer
            .authorize(&attributes(spec, &subject(spec)))
            .await
            .is_ok();
        Ok(review("SubjectAccessReview", spec, allowed))
    }
}

/// LocalSubjectAccessReview: a SubjectAccessReview confined to one namespace, so that
/// namespace admins may be granted it.
pub struct LocalSubjectAccessReviews {
    pub authorizer: Arc<Chain>,
}

#[async_trait]
impl VirtualRest for LocalSubjectAccessReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        ns: Option<&str>,
        body: Value,
        _caller: &UserInfo,
    ) -> Result<Value, StatusError> {
        let ns = ns.unwrap_or_default();
        let spec = &body["spec"];
        validate("LocalSubjectAccessReview", spec)?;
        if spec["resourceAttributes"]["namespace"]
            .as_str()
            .unwrap_or_default()
            != ns
        {
            return Err(StatusError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
        let allowed = self
            .authorizer
            .authorize(&attributes(spec, &subject(spec)))
            .await
            .is_ok();
        let mut out = review("LocalSubjectAccessReview", spec, allowed);
        out["metadata"]["namespace"] = json!(ns);
        Ok(out)
    }
}

/// `kubectl auth can-i --list`: the caller's rules in a namespace.
pub struct SelfSubjectRulesReviews {
    pub rbac: Option<Arc<Rbac>>,
}

#[async_trait]
impl VirtualRest for SelfSubjectRulesReviews {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        _ns: Option<&str>,
        body: Value,
        user: &UserInfo,
    ) -> Result<Value, StatusError> {
        let ns = body["spec"]["namespace"].as_str().unwrap_or_default();
        let (resource_rules, non_resource_rules, incomplete) = match &self.rbac {
            Some(rbac) => {
                let mut rr = Vec::new();
                let mut nr = Vec::new();
                for r in rbac.rules_for(user, ns).await {
                    if r["nonResourceURLs"]
                        .as_array()
                        .is_some_and(|u| !u.is_empty())
                    {
                        nr.push(
                            json!({"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}),
                        );
                    } else {
                        let mut x = json!({"verbs": r["verbs"], "apiGroups": r["apiGroups"], "resources": r["resources"]});
                        if r["resourceNames"].is_array() {
                            x["resourceNames"] = r["resourceNames"].clone();
                        }
                        rr.push(x);
                    }
                }
                (rr, nr, false)
            }
            None => (Vec::new(), Vec::new(), true),
        };
        Ok(
            json!({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {}, "spec": body["spec"],
            "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete}}),
        )
    }
}
