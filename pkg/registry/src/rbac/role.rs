//! Roles and ClusterRoles (upstream `pkg/registry/rbac/role`, `clusterrole`).

use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};

fn validate_rules(rules: &[PolicyRule], namespaced: bool) -> Vec<Cause> {
    let mut c = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let f = format!("rules[{i}]");
        if r.verbs.is_empty() {
            c.push(Cause::required(
                &format!("{f}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = r.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty());
        if urls && namespaced {
            c.push(Cause::invalid(
                &format!("{f}.nonResourceURLs"),
                &serde_json::json!(r.non_resource_urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        let resources = r.resources.as_ref().is_some_and(|u| !u.is_empty());
        if urls && resources {
            c.push(Cause::invalid(
                &format!("{f}.nonResourceURLs"),
                &serde_json::json!(r.non_resource_urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        if !urls && (r.api_groups.as_ref().is_none_or(|g| g.is_empty()) || !resources) {
            if r.api_groups.as_ref().is_none_or(|g| g.is_empty()) {
                c.push(Cause::required(
                    &format!("{f}.apiGroups"),
                    "resource rules must supply at least one api group",
                ));
            }
            if !resources {
                c.push(Cause::required(
                    &format!("{f}.resources"),
                    "resource rules must supply at least one resource",
                ));
            }
        }
    }
    c
}

pub fn role() -> Typed<Role> {
    let mut t = simple(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
    );
    t.name_rule = apimachinery::validation::path_segment_name;
    t.validate = |r: &Role| validate_rules(r.rules.as_deref().unwrap_or_default(), true);
    t
}

pub fn cluster_role() -> Typed<ClusterRole> {
    let mut t = simple(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
    );
    t.name_rule = apimachinery::validation::path_segment_name;
    // Aggregated roles get their rules from the aggregation controller.
    t.validate = |r: &ClusterRole| validate_rules(r.rules.as_deref().unwrap_or_default(), false);
    t
}
