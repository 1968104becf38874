//! The `authorization.k8s.io/v1` group: access reviews answered by the authorizer chain
//! (upstream `pkg/registry/authorization`), never stored. `kubectl auth can-i` sends
//! SelfSubjectAccessReviews (`--list`: SelfSubjectRulesReviews) as protobuf; the few
//! fields they carry are read from it.

use crate::typed::{Typed, simple};
use apimachinery::StatusError;
use apimachinery::protobuf::{bytes_field, fields, string_field};
use apiserver::authentication::UserInfo;
use apiserver::authorization::rbac::Rbac;
use apiserver::authorization::{Attributes, Chain};
use apiserver::endpoints::VirtualRest;
use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{
    SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
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

/// Named string fields of a protobuf message as a JSON object.
fn strings(raw: &[u8], names: &[(u32, &str)]) -> Option<Value> {
    let f = fields(raw)?;
    let mut m = Map::new();
    for (tag, name) in names {
        if let Some(s) = string_field(&f, *tag) {
            m.insert((*name).to_string(), json!(s));
        }
    }
    Some(Value::Object(m))
}

/// `spec` (field 2) of an access review: resourceAttributes (1) / nonResourceAttributes (2).
fn access_spec_from_protobuf(raw: &[u8]) -> Option<Value> {
    let spec = bytes_field(&fields(raw)?, 2)?;
    let f = fields(spec)?;
    let mut out = json!({});
    if let Some(r) = bytes_field(&f, 1) {
        out["resourceAttributes"] = strings(
            r,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        )?;
    }
    if let Some(n) = bytes_field(&f, 2) {
        out["nonResourceAttributes"] = strings(n, &[(1, "path"), (2, "verb")])?;
    }
    Some(json!({"spec": out}))
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

fn review(kind: &str, spec: &Value, allowed: bool) -> Value {
    let mut status = json!({"allowed": allowed});
    if allowed {
        status["reason"] = json!("allowed by the authorizer chain");
    }
    json!({"kind": kind, "apiVersion": "authorization.k8s.io/v1", "metadata": {"creationTimestamp": null}, "spec": spec, "status": status})
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

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Value> {
        access_spec_from_protobuf(raw)
    }

    async fn create(&self, body: Value, user: &UserInfo) -> Result<Value, StatusError> {
        let spec = &body["spec"];
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

    async fn create(&self, body: Value, _caller: &UserInfo) -> Result<Value, StatusError> {
        let spec = &body["spec"];
        let subject = UserInfo {
            name: spec["user"].as_str().unwrap_or_default().to_string(),
            uid: spec["uid"].as_str().unwrap_or_default().to_string(),
            groups: spec["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(String::from))
                .collect(),
            extra: BTreeMap::new(),
        };
        let allowed = self
            .authorizer
            .authorize(&attributes(spec, &subject))
            .await
            .is_ok();
        Ok(review("SubjectAccessReview", spec, allowed))
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

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Value> {
        let spec = bytes_field(&fields(raw)?, 2)?;
        Some(json!({"spec": strings(spec, &[(1, "namespace")])?}))
    }

    async fn create(&self, body: Value, user: &UserInfo) -> Result<Value, StatusError> {
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
            "metadata": {"creationTimestamp": null}, "spec": body["spec"],
            "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete}}),
        )
    }
}
