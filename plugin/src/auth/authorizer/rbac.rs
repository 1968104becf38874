//! The RBAC authorizer (upstream `plugin/pkg/auth/authorizer/rbac`): a request is allowed
//! when a rule of a role bound to the user (by User, Group or ServiceAccount subject)
//! covers its verb, API group, resource/subresource and name — or its non-resource URL.
//! Bindings and roles are read from the watch caches.

use apiserver::authorization::{Attributes, Authorizer};
use apiserver::registry::generic::Registry;
use apiserver::registry::options::ListOptions;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

pub struct Rbac {
    pub roles: Arc<Registry>,
    pub cluster_roles: Arc<Registry>,
    pub role_bindings: Arc<Registry>,
    pub cluster_role_bindings: Arc<Registry>,
}

/// The strings of a JSON array field (absent = none).
pub(crate) fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn has(v: &Value, want: &str) -> bool {
    strings(v).any(|s| s == "*" || s == want)
}

/// Whether a binding's subjects include the user.
pub fn applies_to(
    binding: &Value,
    user: &apiserver::authentication::UserInfo,
    binding_ns: &str,
) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            let name = s["name"].as_str().unwrap_or_default();
            match s["kind"].as_str().unwrap_or_default() {
                "User" => user.name == name,
                "Group" => user.groups.iter().any(|g| g == name),
                "ServiceAccount" => {
                    let ns = s["namespace"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(binding_ns);
                    user.name == format!("system:serviceaccount:{ns}:{name}")
                }
                _ => false,
            }
        })
}

/// Whether one PolicyRule covers the request.
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&rule["verbs"], &a.verb) {
        return false;
    }
    if !a.resource_request {
        return strings(&rule["nonResourceURLs"]).any(|u| {
            u == "*" || u == a.path || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
        });
    }
    if !has(&rule["apiGroups"], &a.api_group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (a.subresource.is_empty() && r == a.resource)
            || r.strip_prefix("*/")
                .is_some_and(|sub| sub == a.subresource && !a.subresource.is_empty())
    });
    if !resource_ok {
        return false;
    }
    let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
    names.is_empty() || names.contains(&a.name.as_str())
}

impl Rbac {
    async fn rules_of(&self, role_ref: &Value, ns: &str) -> Vec<Value> {
        let name = role_ref["name"].as_str().unwrap_or_default();
        let role = match role_ref["kind"].as_str() {
            Some("ClusterRole") => self.cluster_roles.get(None, name).await,
            Some("Role") => self.roles.get(Some(ns), name).await,
            _ => return Vec::new(),
        };
        role.map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every rule that applies to the user for a namespace (cluster-wide ones included).
    pub async fn rules_for(
        &self,
        user: &apiserver::authentication::UserInfo,
        ns: &str,
    ) -> Vec<Value> {
        let mut rules = Vec::new();
        let all = ListOptions::cached();
        if let Ok(list) = self.cluster_role_bindings.list(None, &all).await {
            for b in list.items.iter().map(|o| &o.value) {
                if applies_to(b, user, "") {
                    rules.extend(self.rules_of(&b["roleRef"], "").await);
                }
            }
        }
        if !ns.is_empty()
            && let Ok(list) = self.role_bindings.list(Some(ns), &all).await
        {
            for b in list.items.iter().map(|o| &o.value) {
                if applies_to(b, user, ns) {
                    rules.extend(self.rules_of(&b["roleRef"], ns).await);
                }
            }
        }
        rules
    }
}

#[async_trait]
impl Authorizer for Rbac {
    async fn allows(&self, a: &Attributes) -> bool {
        // Members of system:masters are superusers, as upstream.
        if a.user.groups.iter().any(|g| g == "system:masters") {
            return true;
        }
        self.rules_for(&a.user, &a.namespace)
            .await
            .iter()
            .any(|r| rule_allows(r, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_names_and_paths() {
        let r =
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]});
        assert!(rule_allows(&r, &attrs("list", "", "pods", "", "")));
        assert!(rule_allows(&r, &attrs("get", "", "pods", "log", "p")));
        assert!(!rule_allows(&r, &attrs("get", "", "pods", "exec", "p")));
        assert!(!rule_allows(&r, &attrs("delete", "", "pods", "", "p")));
        assert!(!rule_allows(&r, &attrs("get", "apps", "pods", "", "p")));
        let named = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["configmaps"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "b")
        ));
        let nr = json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(rule_allows(&nr, &path("/healthz")));
        assert!(rule_allows(&nr, &path("/api/v1")));
        assert!(!rule_allows(&nr, &path("/metrics")));
    }

    #[test]
    fn subjects() {
        let user = apiserver::authentication::UserInfo {
            name: "system:serviceaccount:ns1:builder".into(),
            groups: vec!["dev".into()],
            ..Default::default()
        };
        assert!(applies_to(
            &json!({"subjects": [{"kind": "Group", "name": "dev"}]}),
            &user,
            ""
        ));
        assert!(applies_to(
            &json!({"subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": "ns1"}]}),
            &user,
            ""
        ));
        assert!(applies_to(
            &json!({"subjects": [{"kind": "ServiceAccount", "name": "builder"}]}),
            &user,
            "ns1"
        ));
        assert!(!applies_to(
            &json!({"subjects": [{"kind": "User", "name": "dev"}]}),
            &user,
            ""
        ));
    }
}
