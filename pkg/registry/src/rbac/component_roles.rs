//! The bootstrap roles of the control-plane components and node agents (upstream
//! `bootstrappolicy` cluster roles for kubelets, kube-proxy, the scheduler, the
//! controller-manager, DNS, monitoring and certificate approval), with their default
//! bindings, so upstream components can run against this apiserver under RBAC.

use serde_json::{Value, json};

pub(super) const READ: &[&str] = &["get", "list", "watch"];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];
pub(super) const RBAC: &str = "rbac.authorization.k8s.io";

/// One rule: verbs, API groups, resources, resource names.
pub(super) fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

pub(super) fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

fn urls(verbs: &[&str], paths: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": paths})
}

/// Recording events, through either API.
pub(super) fn events() -> Value {
    r(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

/// Leader election on a Lease named after the component.
fn leader_election(name: &str) -> Vec<Value> {
    vec![
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        named(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &[name],
        ),
    ]
}

fn delegated_auth() -> Vec<Value> {
    vec![
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
    ]
}

fn node_rules() -> Vec<Value> {
    vec![
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        r(READ, &[""], &["services"]),
        r(&["create", "get", "list", "watch"], &[""], &["nodes"]),
        r(&["update", "patch"], &[""], &["nodes/status"]),
        r(&["update", "patch"], &[""], &["nodes"]),
        r(&["create", "update", "patch"], &[""], &["events"]),
        r(READ, &[""], &["pods"]),
        r(&["create", "delete"], &[""], &["pods"]),
        r(&["update", "patch"], &[""], &["pods/status"]),
        r(&["create"], &[""], &["pods/eviction"]),
        r(READ, &[""], &["secrets", "configmaps"]),
        r(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        r(&["get"], &[""], &["endpoints"]),
        r(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        r(
            &["get", "create", "update", "patch", "delete"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        r(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        r(
            &["get", "update", "patch"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        r(&["create"], &[""], &["serviceaccounts/token"]),
        r(READ, &["storage.k8s.io"], &["csidrivers"]),
        r(
            &["get", "create", "update", "patch", "delete"],
            &["storage.k8s.io"],
            &["csinodes"],
        ),
        r(READ, &["node.k8s.io"], &["runtimeclasses"]),
        r(&["get"], &["resource.k8s.io"], &["resourceclaims"]),
    ]
}

fn scheduler_rules() -> Vec<Value> {
    let mut rules = vec![events()];
    rules.extend(leader_election("kube-scheduler"));
    rules.extend([
        r(READ, &[""], &["nodes"]),
        r(&["get", "list", "watch", "delete"], &[""], &["pods"]),
        r(&["create"], &[""], &["pods/binding", "bindings"]),
        r(&["patch", "update"], &[""], &["pods/status"]),
        r(READ, &[""], &["services", "replicationcontrollers"]),
        r(READ, &["apps", "extensions"], &["replicasets"]),
        r(READ, &["apps"], &["statefulsets"]),
        r(READ, &["policy"], &["poddisruptionbudgets"]),
        r(
            READ,
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        r(READ, &["storage.k8s.io"], &["csinodes"]),
        r(READ, &[""], &["namespaces"]),
        r(READ, &["storage.k8s.io"], &["csidrivers"]),
        r(READ, &["storage.k8s.io"], &["csistoragecapacities"]),
        // CSI attach limits count VolumeAttachments (upstream v1.32).
        r(READ, &["storage.k8s.io"], &["volumeattachments"]),
        // Dynamic resource allocation (GA, on by default since v1.34).
        r(
            READ,
            &["resource.k8s.io"],
            &["resourceclaims", "deviceclasses"],
        ),
        r(
            READ_UPDATE,
            &["resource.k8s.io"],
            &["resourceclaims/status"],
        ),
        r(READ, &["resource.k8s.io"], &["resourceslices"]),
    ]);
    rules.extend(delegated_auth());
    rules
}

fn controller_manager_rules() -> Vec<Value> {
    let mut rules = vec![events()];
    rules.extend(leader_election("kube-controller-manager"));
    rules.extend([
        r(&["create"], &[""], &["secrets", "serviceaccounts"]),
        r(&["delete"], &[""], &["secrets"]),
        r(
            &["get"],
            &[""],
            &["namespaces", "secrets", "serviceaccounts", "configmaps"],
        ),
        r(&["update"], &[""], &["secrets", "serviceaccounts"]),
        r(&["list", "watch"], &["*"], &["*"]),
        r(&["create"], &[""], &["serviceaccounts/token"]),
    ]);
    rules.extend(delegated_auth());
    rules
}

fn approver(signer: &str) -> Vec<Value> {
    vec![named(
        &["approve"],
        &["certificates.k8s.io"],
        &["signers"],
        &[signer],
    )]
}

pub(super) fn role(name: &str, rules: Vec<Value>) -> (&'static str, Value) {
    (
        "clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules}),
    )
}

/// A subject: `User:name`, `Group:name` or `ServiceAccount:namespace/name`.
pub(super) fn subject(s: &str) -> Value {
    match s.split_once(':') {
        Some(("ServiceAccount", sa)) => {
            let (ns, name) = sa.split_once('/').unwrap_or(("default", sa));
            json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
        }
        Some((kind, name)) => json!({"apiGroup": RBAC, "kind": kind, "name": name}),
        None => json!({"apiGroup": RBAC, "kind": "User", "name": s}),
    }
}

pub(super) fn bind(role: &str, subjects: &[&str]) -> (&'static str, Value) {
    let subjects: Vec<Value> = subjects.iter().map(|s| subject(s)).collect();
    let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}});
    if !subjects.is_empty() {
        b["subjects"] = json!(subjects);
    }
    ("clusterrolebindings", b)
}

pub fn objects() -> Vec<(&'static str, Value)> {
    let health = [
        "/healthz",
        "/healthz/*",
        "/livez",
        "/livez/*",
        "/readyz",
        "/readyz/*",
        "/metrics",
        "/metrics/slis",
    ];
    vec![
        role("system:node", node_rules()),
        role(
            "system:node-proxier",
            vec![
                r(&["list", "watch"], &[""], &["services", "endpoints"]),
                r(READ, &[""], &["nodes"]),
                events(),
                r(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        role("system:kube-scheduler", scheduler_rules()),
        role(
            "system:volume-scheduler",
            vec![
                r(READ_UPDATE, &[""], &["persistentvolumes"]),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(READ_UPDATE, &[""], &["persistentvolumeclaims"]),
            ],
        ),
        role("system:kube-controller-manager", controller_manager_rules()),
        role(
            "system:kube-dns",
            vec![r(&["list", "watch"], &[""], &["endpoints", "services"])],
        ),
        role("system:auth-delegator", delegated_auth()),
        role(
            "system:node-bootstrapper",
            vec![r(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        role(
            "system:node-problem-detector",
            vec![
                r(&["get"], &[""], &["nodes"]),
                r(&["patch"], &[""], &["nodes/status"]),
                events(),
            ],
        ),
        role(
            "system:kubelet-api-admin",
            vec![
                r(READ, &[""], &["nodes"]),
                r(&["proxy"], &[""], &["nodes"]),
                r(
                    &["*"],
                    &[""],
                    &["nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"],
                ),
            ],
        ),
        role(
            "system:kube-aggregator",
            vec![r(READ, &[""], &["services", "endpoints"])],
        ),
        role(
            "system:persistent-volume-provisioner",
            vec![
                r(
                    &["get", "list", "watch", "create", "delete"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(
                    &["get", "list", "watch", "update"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(&["watch"], &[""], &["events"]),
                events(),
            ],
        ),
        role("system:monitoring", vec![urls(&["get"], &health)]),
        role(
            "system:heapster",
            vec![
                r(READ, &[""], &["events", "pods", "nodes", "namespaces"]),
                r(READ, &["extensions"], &["deployments"]),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![r(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![r(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        role(
            "system:certificates.k8s.io:legacy-unknown-approver",
            approver("kubernetes.io/legacy-unknown"),
        ),
        role(
            "system:certificates.k8s.io:kubelet-serving-approver",
            approver("kubernetes.io/kubelet-serving"),
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            approver("kubernetes.io/kube-apiserver-client"),
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            approver("kubernetes.io/kube-apiserver-client-kubelet"),
        ),
        bind("system:node", &[]),
        bind("system:node-proxier", &["User:system:kube-proxy"]),
        bind("system:kube-scheduler", &["User:system:kube-scheduler"]),
        bind("system:volume-scheduler", &["User:system:kube-scheduler"]),
        bind(
            "system:kube-controller-manager",
            &["User:system:kube-controller-manager"],
        ),
        bind("system:kube-dns", &["ServiceAccount:kube-system/kube-dns"]),
        bind("system:monitoring", &["Group:system:monitoring"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_names() {
        assert_eq!(
            subject("User:system:kube-proxy")["name"],
            "system:kube-proxy"
        );
        assert_eq!(subject("Group:system:monitoring")["kind"], "Group");
        assert_eq!(
            subject("ServiceAccount:kube-system/kube-dns")["namespace"],
            "kube-system"
        );
        let objs = objects();
        let names: Vec<&str> = objs
            .iter()
            .filter(|(r, _)| *r == "clusterroles")
            .map(|(_, o)| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"system:kube-scheduler") && names.contains(&"system:node"));
    }
}
