//! Upstream's bootstrap RBAC policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`),
//! created at start: the superuser and user-facing roles (`cluster-admin`, `admin`,
//! `edit`, `view`), discovery and basic-user roles, and their default bindings.

use serde_json::{Value, json};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

/// Resources `view` reads, per API group.
const VIEWABLE: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "pods",
            "pods/log",
            "pods/status",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "replicationcontrollers/status",
            "services",
            "services/status",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "configmaps",
            "serviceaccounts",
            "limitranges",
            "resourcequotas",
            "resourcequotas/status",
            "bindings",
            "events",
            "namespaces",
            "namespaces/status",
        ],
    ),
    (
        "apps",
        &[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
            "controllerrevisions",
        ],
    ),
    (
        "autoscaling",
        &[
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status",
        ],
    ),
    (
        "batch",
        &["jobs", "jobs/status", "cronjobs", "cronjobs/status"],
    ),
    (
        "policy",
        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
    ),
    (
        "networking.k8s.io",
        &["ingresses", "ingresses/status", "networkpolicies"],
    ),
    ("discovery.k8s.io", &["endpointslices"]),
    ("events.k8s.io", &["events"]),
];

/// Resources `edit` may change, per API group.
const EDITABLE: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "pods",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "pods/eviction",
            "pods/ephemeralcontainers",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "services",
            "services/proxy",
            "endpoints",
            "persistentvolumeclaims",
            "configmaps",
            "secrets",
            "serviceaccounts",
        ],
    ),
    (
        "apps",
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
    ),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("batch", &["jobs", "cronjobs"]),
    ("policy", &["poddisruptionbudgets"]),
    ("networking.k8s.io", &["ingresses", "networkpolicies"]),
    ("discovery.k8s.io", &["endpointslices"]),
];

fn view_rules() -> Vec<Value> {
    VIEWABLE.iter().map(|(g, r)| rule(&READ, g, r)).collect()
}

fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    rules.extend(EDITABLE.iter().map(|(g, r)| rule(&WRITE, g, r)));
    rules.push(rule(
        &READ,
        "",
        &[
            "secrets",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "services/proxy",
        ],
    ));
    rules.push(rule(&["create"], "", &["serviceaccounts/token"]));
    rules.push(rule(&["impersonate"], "", &["serviceaccounts"]));
    rules
}

fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    let rbac: &[&str] = &["roles", "rolebindings"];
    let mut all: Vec<&str> = READ.to_vec();
    all.extend(WRITE);
    rules.push(rule(&all, "rbac.authorization.k8s.io", rbac));
    rules.push(rule(
        &["create"],
        "authorization.k8s.io",
        &["localsubjectaccessreviews"],
    ));
    rules
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
    vec![
        (
            "clusterroles",
            cluster_role(
                "cluster-admin",
                serde_json::from_value(all).unwrap_or_default(),
                None,
            ),
        ),
        ("clusterroles", cluster_role("admin", admin_rules(), None)),
        (
            "clusterroles",
            cluster_role("edit", edit_rules(), Some("admin")),
        ),
        (
            "clusterroles",
            cluster_role("view", view_rules(), Some("edit")),
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
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
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
