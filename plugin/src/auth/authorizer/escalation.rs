//! RBAC escalation prevention (upstream `pkg/registry/rbac/{role,clusterrole,rolebinding,
//! clusterrolebinding}/policybased`): nobody grants permissions they do not hold. Writing
//! a Role/ClusterRole needs every rule it contains (or the `escalate` verb); writing a
//! binding needs every rule of the referenced role (or the `bind` verb on it).

use super::rbac::{Rbac, rule_allows};
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{self, Operation};
use apiserver::authentication::UserInfo;
use apiserver::authorization::Attributes;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

pub struct EscalationCheck {
    pub rbac: Arc<Rbac>,
}

const GROUP: &str = "rbac.authorization.k8s.io";

fn strings(v: &Value) -> Vec<String> {
    super::rbac::strings(v).map(String::from).collect()
}

/// Every (verb, group, resource, name) or (verb, path) a rule grants, as request attributes.
fn expand(rule: &Value, user: &UserInfo, ns: &str) -> Vec<Attributes> {
    let mut out = Vec::new();
    let verbs = strings(&rule["verbs"]);
    for url in strings(&rule["nonResourceURLs"]) {
        for v in &verbs {
            out.push(Attributes {
                user: user.clone(),
                verb: v.clone(),
                path: url.clone(),
                ..Default::default()
            });
        }
    }
    let mut names = strings(&rule["resourceNames"]);
    if names.is_empty() {
        names.push(String::new());
    }
    for g in strings(&rule["apiGroups"]) {
        for r in strings(&rule["resources"]) {
            let (resource, sub) = r
                .split_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or((r.clone(), String::new()));
            for v in &verbs {
                for n in &names {
                    out.push(Attributes {
                        user: user.clone(),
                        verb: v.clone(),
                        resource_request: true,
                        api_group: g.clone(),
                        resource: resource.clone(),
                        subresource: sub.clone(),
                        namespace: ns.to_string(),
                        name: n.clone(),
                        path: String::new(),
                    });
                }
            }
        }
    }
    out
}

impl EscalationCheck {
    /// The rules among `wanted` that the user does not hold in `ns`.
    async fn missing(&self, user: &UserInfo, ns: &str, wanted: &[Value]) -> Vec<Value> {
        let held = self.rbac.rules_for(user, ns).await;
        wanted
            .iter()
            .filter(|rule| {
                !expand(rule, user, ns)
                    .iter()
                    .all(|a| held.iter().any(|h| rule_allows(h, a)))
            })
            .cloned()
            .collect()
    }

    async fn allowed(
        &self,
        user: &UserInfo,
        verb: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> bool {
        let a = Attributes {
            user: user.clone(),
            verb: verb.into(),
            resource_request: true,
            api_group: GROUP.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        };
        self.rbac
            .rules_for(user, ns)
            .await
            .iter()
            .any(|r| rule_allows(r, &a))
    }
}

fn refusal(resource: &str, name: &str, user: &UserInfo, what: String) -> StatusError {
    StatusError::forbidden(
        &GroupResource::new(GROUP, resource),
        name,
        &format!(
            "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{what}",
            user.name, user.groups
        ),
    )
}

fn describe(rules: &[Value]) -> String {
    rules
        .iter()
        .map(|r| {
            format!(
                "{{APIGroups:{:?}, Resources:{:?}, Verbs:{:?}}}",
                strings(&r["apiGroups"]),
                strings(&r["resources"]),
                strings(&r["verbs"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl admission::Plugin for EscalationCheck {
    fn name(&self) -> &'static str {
        "RBACEscalation"
    }

    async fn validate(
        &self,
        attrs: &admission::Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let (Some(obj), Some(user)) = (obj, attrs.user) else {
            return Ok(());
        };
        if attrs.operation == Operation::Delete || attrs.resource.group != GROUP {
            return Ok(());
        }
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        let resource = attrs.resource.resource.as_str();
        let ns = attrs.namespace;
        match resource {
            "roles" | "clusterroles" => {
                if self
                    .allowed(user, "escalate", resource, ns, attrs.name)
                    .await
                {
                    return Ok(());
                }
                let rules = obj["rules"].as_array().cloned().unwrap_or_default();
                let missing = self.missing(user, ns, &rules).await;
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(refusal(resource, attrs.name, user, describe(&missing)))
                }
            }
            "rolebindings" | "clusterrolebindings" => {
                let role_ref = &obj["roleRef"];
                let kind = role_ref["kind"].as_str().unwrap_or_default();
                let role_name = role_ref["name"].as_str().unwrap_or_default();
                let role_resource = if kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                let role_ns = if kind == "Role" { ns } else { "" };
                if self
                    .allowed(user, "bind", role_resource, role_ns, role_name)
                    .await
                {
                    return Ok(());
                }
                let role = if kind == "Role" {
                    self.rbac.roles.get(Some(ns), role_name).await
                } else {
                    self.rbac.cluster_roles.get(None, role_name).await
                };
                let rules = role
                    .map(|r| r["rules"].as_array().cloned().unwrap_or_default())
                    .unwrap_or_default();
                let missing = self.missing(user, ns, &rules).await;
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(refusal(resource, attrs.name, user, describe(&missing)))
                }
            }
            _ => Ok(()),
        }
    }
}
