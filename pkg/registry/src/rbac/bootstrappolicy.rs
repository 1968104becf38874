//! Upstream's bootstrap RBAC policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`),
//! created at start: the superuser and user-facing roles (`cluster-admin`, `admin`,
//! `edit`, `view`), discovery and basic-user roles, and their default bindings.

use serde_json::{Value, json};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];
const ALL: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

/// `system:aggregate-to-view`: reading everything but secrets and RBAC.
fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            &READ,
            "",
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            &READ,
            "",
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Namespaces are readable in view so that a namespaced binding can see its own.
        rule(&READ, "", &["namespaces"]),
        rule(&READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            &READ,
            "apps",
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
            ],
        ),
        rule(
            &READ,
            "autoscaling",
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            &READ,
            "batch",
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            &READ,
            "extensions",
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            &READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            &READ,
            "networking.k8s.io",
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

/// `system:aggregate-to-edit`: changing workloads, without RBAC (and, since upstream's
/// CVE-2021-25740 fix, without writing Endpoints).
fn aggregate_to_edit() -> Vec<Value> {
    vec![
        rule(
            &READ,
            "",
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(
            &WRITE,
            "",
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            &WRITE,
            "",
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            &WRITE,
            "apps",
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(&WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(&WRITE, "batch", &["jobs", "cronjobs"]),
        rule(
            &WRITE,
            "extensions",
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(&WRITE, "policy", &["poddisruptionbudgets"]),
        rule(
            &WRITE,
            "networking.k8s.io",
            &["ingresses", "networkpolicies"],
        ),
        rule(&ALL, "coordination.k8s.io", &["leases"]),
    ]
}

/// `system:aggregate-to-admin`: managing access within a namespace.
fn aggregate_to_admin() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            "authorization.k8s.io",
            &["localsubjectaccessreviews"],
        ),
        rule(
            &ALL,
            "rbac.authorization.k8s.io",
            &["rolebindings", "roles"],
        ),
    ]
}

/// An aggregated role (`admin`, `edit`, `view`): its rules are the union of the roles
/// labelled `aggregate-to-<name>`, kept by the controller-manager's aggregation
/// controller. They are filled in here already, as that controller would, so that the
/// roles work before (or without) a controller-manager.
fn aggregated(name: &str, rules: Vec<Value>, aggregate_to: Option<&str>) -> Value {
    let mut role = cluster_role(name, rules, aggregate_to);
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {
        format!("rbac.authorization.k8s.io/aggregate-to-{name}"): "true"}}]});
    role
}

fn cluster_role(name: &str, rules: Vec<Value>, aggregate_to: Option<&str>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(a) = aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{a}")] = json!("true");
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules})
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects})
}

/// (resource plural, object) for everything the policy creates, roles first.
pub fn objects() -> Vec<(&'static str, Value)> {
    let paths = |ps: &[&str]| json!([{"verbs": ["get"], "nonResourceURLs": ps}]);
    let all = json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]);
    let view = aggregate_to_view();
    let edit: Vec<Value> = aggregate_to_edit()
        .into_iter()
        .chain(view.clone())
        .collect();
    let admin: Vec<Value> = aggregate_to_admin()
        .into_iter()
        .chain(edit.clone())
        .collect();
    vec![
        (
            "clusterroles",
            cluster_role(
                "cluster-admin",
                serde_json::from_value(all).unwrap_or_default(),
                None,
            ),
        ),
        ("clusterroles", aggregated("admin", admin.clone(), None)),
        (
            "clusterroles",
            aggregated("edit", edit.clone(), Some("admin")),
        ),
        (
            "clusterroles",
            aggregated("view", view.clone(), Some("edit")),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:aggregate-to-admin",
                aggregate_to_admin(),
                Some("admin"),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:aggregate-to-edit",
                aggregate_to_edit(),
                Some("edit"),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:aggregate-to-view",
                aggregate_to_view(),
                Some("view"),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:discovery",
                serde_json::from_value(paths(&[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ]))
                .unwrap_or_default(),
                None,
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:public-info-viewer",
                serde_json::from_value(paths(&[
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/version",
                    "/version/",
                ]))
                .unwrap_or_default(),
                None,
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:basic-user",
                vec![
                    rule(
                        &["create"],
                        "authentication.k8s.io",
                        &["selfsubjectreviews"],
                    ),
                    rule(
                        &["create"],
                        "authorization.k8s.io",
                        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    ),
                ],
                None,
            ),
        ),
        (
            "clusterrolebindings",
            binding("cluster-admin", "cluster-admin", &["system:masters"]),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:discovery",
                "system:discovery",
                &["system:authenticated"],
            ),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:basic-user",
                "system:basic-user",
                &["system:authenticated"],
            ),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:public-info-viewer",
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ),
        // Service-account token verifiers (other workloads) read the OIDC documents.
        (
            "clusterroles",
            cluster_role(
                "system:service-account-issuer-discovery",
                serde_json::from_value(paths(&[
                    "/.well-known/openid-configuration",
                    "/openid/v1/jwks",
                ]))
                .unwrap_or_default(),
                None,
            ),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:service-account-issuer-discovery",
                "system:service-account-issuer-discovery",
                &["system:serviceaccounts"],
            ),
        ),
    ]
}
