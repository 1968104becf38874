//! The `flowcontrol.apiserver.k8s.io/v1` group (API Priority and Fairness configuration):
//! FlowSchemas and PriorityLevelConfigurations, with the mandatory objects upstream
//! keeps in every cluster.

pub mod flowschema;
pub mod prioritylevel;

use serde_json::{Value, json};

const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";

/// Upstream's mandatory configuration: the `exempt` and `catch-all` priority levels and
/// the flow schemas that route to them.
pub fn mandatory_objects() -> Vec<(&'static str, Value)> {
    let meta = |name: &str| json!({"name": name, "annotations": {AUTOUPDATE: "true"}});
    vec![
        (
            "prioritylevelconfigurations",
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": meta("exempt"),
                "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}}),
        ),
        (
            "prioritylevelconfigurations",
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": meta("catch-all"),
                "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 5, "lendablePercent": 0, "limitResponse": {"type": "Reject"}}}}),
        ),
        (
            "flowschemas",
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": meta("exempt"),
                "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1,
                    "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:masters"}}],
                        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
        ),
        (
            "flowschemas",
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": meta("catch-all"),
                "spec": {"priorityLevelConfiguration": {"name": "catch-all"}, "matchingPrecedence": 10000, "distinguisherMethod": {"type": "ByUser"},
                    "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:unauthenticated"}}, {"kind": "Group", "group": {"name": "system:authenticated"}}],
                        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
        ),
    ]
}

fn level(
    name: &str,
    shares: u32,
    lendable: u32,
    queues: u32,
    hand_size: u32,
) -> (&'static str, Value) {
    (
        "prioritylevelconfigurations",
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}},
            "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": shares, "lendablePercent": lendable,
                "limitResponse": {"type": "Queue", "queuing": {"queues": queues, "handSize": hand_size, "queueLengthLimit": 50}}}}}),
    )
}

fn schema(
    name: &str,
    level: &str,
    precedence: u32,
    by: Option<&str>,
    rules: Value,
) -> (&'static str, Value) {
    let mut spec = json!({"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": precedence, "rules": rules});
    if let Some(by) = by {
        spec["distinguisherMethod"] = json!({"type": by});
    }
    (
        "flowschemas",
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}}, "spec": spec}),
    )
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn kube_system_service_accounts() -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}})
}

/// Every request of these subjects.
fn all(subjects: Value) -> Value {
    json!([{"subjects": subjects,
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}])
}

fn resource_rule(
    verbs: &[&str],
    group: &str,
    resources: &[&str],
    namespaces: &[&str],
    cluster: bool,
) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources, "namespaces": namespaces, "clusterScope": cluster})
}

/// Upstream's suggested configuration, kept up to date while the
/// `apf.kubernetes.io/autoupdate-spec` annotation is `true`.
pub fn suggested_objects() -> Vec<(&'static str, Value)> {
    let leases = resource_rule(
        &["get", "create", "update"],
        "coordination.k8s.io",
        &["leases"],
        &["*"],
        false,
    );
    vec![
        level("system", 30, 33, 64, 6),
        level("node-high", 40, 25, 64, 6),
        level("leader-election", 10, 0, 16, 4),
        level("workload-high", 40, 50, 128, 6),
        level("workload-low", 100, 90, 128, 6),
        level("global-default", 20, 50, 128, 6),
        schema(
            "probes",
            "exempt",
            2,
            None,
            json!([{
            "subjects": [group("system:unauthenticated"), group("system:authenticated")],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]}]),
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            Some("ByUser"),
            json!([{
            "subjects": [user("system:kube-controller-manager"), user("system:kube-scheduler"), kube_system_service_accounts()],
            "resourceRules": [resource_rule(&["get", "create", "update"], "", &["endpoints", "configmaps"], &["kube-system"], false), leases]}]),
        ),
        schema(
            "endpoint-controller",
            "workload-high",
            150,
            Some("ByUser"),
            json!([{
            "subjects": [user("system:kube-controller-manager"), {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "endpoint-controller"}}],
            "resourceRules": [resource_rule(&["get", "create", "update"], "", &["endpoints"], &["*"], false)]}]),
        ),
        schema(
            "workload-leader-election",
            "leader-election",
            200,
            Some("ByUser"),
            json!([{
            "subjects": [kube_system_service_accounts()],
            "resourceRules": [resource_rule(&["get", "create", "update"], "", &["endpoints", "configmaps"], &["*"], false), leases]}]),
        ),
        schema(
            "system-node-high",
            "node-high",
            400,
            Some("ByUser"),
            json!([{
            "subjects": [group("system:nodes")],
            "resourceRules": [resource_rule(&["*"], "", &["nodes", "nodes/status"], &["*"], true),
                resource_rule(&["*"], "coordination.k8s.io", &["leases"], &["*"], false)]}]),
        ),
        schema(
            "system-nodes",
            "system",
            500,
            Some("ByUser"),
            all(json!([group("system:nodes")])),
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            Some("ByNamespace"),
            all(json!([user("system:kube-controller-manager")])),
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            Some("ByNamespace"),
            all(json!([user("system:kube-scheduler")])),
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            Some("ByNamespace"),
            all(json!([kube_system_service_accounts()])),
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            Some("ByUser"),
            all(json!([group("system:serviceaccounts")])),
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            Some("ByUser"),
            all(json!([
                group("system:unauthenticated"),
                group("system:authenticated")
            ])),
        ),
    ]
}
