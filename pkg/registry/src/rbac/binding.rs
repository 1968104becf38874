//! RoleBindings and ClusterRoleBindings (upstream `pkg/registry/rbac/rolebinding`,
//! `clusterrolebinding`): the roleRef cannot change.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use apimachinery::Cause;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use serde_json::{Value, json};

fn validate(role_ref: &RoleRef, subjects: &[Subject], namespaced: bool) -> Vec<Cause> {
    let mut c = Vec::new();
    if role_ref.api_group != "rbac.authorization.k8s.io" {
        c.push(Cause::not_supported(
            "roleRef.apiGroup",
            &json!(role_ref.api_group),
            &["rbac.authorization.k8s.io"],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["ClusterRole", "Role"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        c.push(Cause::not_supported(
            "roleRef.kind",
            &json!(role_ref.kind),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        c.push(Cause::required("roleRef.name", ""));
    }
    for (i, s) in subjects.iter().enumerate() {
        let f = format!("subjects[{i}]");
        if s.name.is_empty() {
            c.push(Cause::required(&format!("{f}.name"), ""));
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if s.namespace.as_deref().unwrap_or_default().is_empty() {
                    c.push(Cause::required(&format!("{f}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if s.api_group.as_deref() != Some("rbac.authorization.k8s.io") {
                    c.push(Cause::not_supported(
                        &format!("{f}.apiGroup"),
                        &json!(s.api_group),
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            other => c.push(Cause::not_supported(
                &format!("{f}.kind"),
                &json!(other),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    c
}

/// Upstream's rbac/v1 defaults: an empty `roleRef.apiGroup` is RBAC's, and so is the
/// `apiGroup` of User and Group subjects (`SetDefaults_RoleBinding`, `SetDefaults_Subject`).
fn default_binding(role_ref: &mut RoleRef, subjects: Option<&mut Vec<Subject>>) {
    const GROUP: &str = "rbac.authorization.k8s.io";
    if role_ref.api_group.is_empty() {
        role_ref.api_group = GROUP.into();
    }
    for s in subjects.into_iter().flatten() {
        if s.api_group.as_deref().unwrap_or_default().is_empty()
            && matches!(s.kind.as_str(), "User" | "Group")
        {
            s.api_group = Some(GROUP.into());
        }
    }
}

fn role_ref_unchanged(n: &RoleRef, o: &RoleRef) -> Vec<Cause> {
    if n != o {
        return vec![Cause::invalid(
            "roleRef",
            &json!(n),
            "cannot change roleRef",
        )];
    }
    Vec::new()
}

fn columns() -> Vec<apiserver::registry::strategy::Column> {
    cols(&[
        ("Role", "string", 0),
        ("Age", "string", 0),
        ("Users", "string", 1),
        ("Groups", "string", 1),
        ("ServiceAccounts", "string", 1),
    ])
}

fn row(o: &Value) -> Vec<Value> {
    let subjects: Vec<&Value> = o["subjects"].as_array().into_iter().flatten().collect();
    let of = |kind: &str| {
        subjects
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| match kind {
                "ServiceAccount" => format!(
                    "{}/{}",
                    s["namespace"].as_str().unwrap_or_default(),
                    s["name"].as_str().unwrap_or_default()
                ),
                _ => s["name"].as_str().unwrap_or_default().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        json!(format!(
            "{}/{}",
            o["roleRef"]["kind"].as_str().unwrap_or_default(),
            o["roleRef"]["name"].as_str().unwrap_or_default()
        )),
        age(o),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}

pub fn role_binding() -> Typed<RoleBinding> {
    let mut t = simple(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
    );
    t.name_rule = apimachinery::validation::path_segment_name;
    t.default = |b: &mut RoleBinding| default_binding(&mut b.role_ref, b.subjects.as_mut());
    t.validate =
        |b: &RoleBinding| validate(&b.role_ref, b.subjects.as_deref().unwrap_or_default(), true);
    t.validate_update = |n, o| role_ref_unchanged(&n.role_ref, &o.role_ref);
    t.columns = Some(columns);
    t.row = row;
    t
}

pub fn cluster_role_binding() -> Typed<ClusterRoleBinding> {
    let mut t = simple(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
    );
    t.name_rule = apimachinery::validation::path_segment_name;
    t.default = |b: &mut ClusterRoleBinding| default_binding(&mut b.role_ref, b.subjects.as_mut());
    t.validate = |b: &ClusterRoleBinding| {
        validate(
            &b.role_ref,
            b.subjects.as_deref().unwrap_or_default(),
            false,
        )
    };
    t.validate_update = |n, o| role_ref_unchanged(&n.role_ref, &o.role_ref);
    t.columns = Some(columns);
    t.row = row;
    t
}
