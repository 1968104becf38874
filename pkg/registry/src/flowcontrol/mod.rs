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
