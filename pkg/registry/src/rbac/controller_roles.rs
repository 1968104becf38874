//! The controllers' bootstrap roles (upstream `bootstrappolicy/controller_policy.go` and
//! `namespace_policy.go`): one `system:controller:<name>` ClusterRole per controller,
//! bound to the `kube-system/<name>` ServiceAccount the controller-manager uses with
//! `--use-service-account-credentials`, and the namespaced roles of kube-system and
//! kube-public (leader locking, the authentication ConfigMap reader, token signing).

use super::component_roles::{RBAC, READ, bind, events, named, r, role, subject};
use serde_json::{Value, json};

const ALL: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const LIST_WATCH: &[&str] = &["list", "watch"];
const UPDATE: &[&str] = &["update"];
const PATCH_UPDATE: &[&str] = &["patch", "update"];

/// The rules of each controller, by the name of its service account.
fn controllers() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "attachdetach-controller",
            vec![
                r(
                    READ,
                    &[""],
                    &["persistentvolumes", "persistentvolumeclaims"],
                ),
                r(READ, &[""], &["nodes"]),
                r(PATCH_UPDATE, &[""], &["nodes/status"]),
                r(LIST_WATCH, &[""], &["pods"]),
                events(),
                r(
                    &["create", "delete", "get", "list", "watch"],
                    &["storage.k8s.io"],
                    &["volumeattachments"],
                ),
                r(READ, &["storage.k8s.io"], &["csidrivers", "csinodes"]),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            vec![r(
                &["escalate", "get", "list", "patch", "update", "watch"],
                &[RBAC],
                &["clusterroles"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &["batch"],
                    &["cronjobs"],
                ),
                r(ALL, &["batch"], &["jobs"]),
                r(
                    UPDATE,
                    &["batch"],
                    &["cronjobs/status", "cronjobs/finalizers"],
                ),
                r(&["delete", "list"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                r(READ, &["apps", "extensions"], &["daemonsets"]),
                r(
                    UPDATE,
                    &["apps", "extensions"],
                    &["daemonsets/status", "daemonsets/finalizers"],
                ),
                r(LIST_WATCH, &[""], &["nodes"]),
                r(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
                r(&["create"], &[""], &["pods/binding"]),
                r(ALL, &["apps"], &["controllerrevisions"]),
                events(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &["apps", "extensions"],
                    &["deployments"],
                ),
                r(
                    UPDATE,
                    &["apps", "extensions"],
                    &["deployments/status", "deployments/finalizers"],
                ),
                r(ALL, &["apps", "extensions"], &["replicasets"]),
                r(&["get", "list", "update", "watch"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                r(
                    READ,
                    &["apps", "extensions"],
                    &["deployments", "replicasets", "statefulsets"],
                ),
                r(READ, &[""], &["replicationcontrollers", "pods"]),
                r(READ, &["policy"], &["poddisruptionbudgets"]),
                r(UPDATE, &["policy"], &["poddisruptionbudgets/status"]),
                r(PATCH_UPDATE, &[""], &["pods/status"]),
                r(&["get"], &["*"], &["*/scale"]),
                events(),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                r(READ, &[""], &["services", "pods"]),
                r(
                    &["create", "delete", "get", "list", "update"],
                    &[""],
                    &["endpoints"],
                ),
                r(&["create"], &[""], &["endpoints/restricted"]),
                events(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                r(READ, &[""], &["services", "pods", "nodes"]),
                r(UPDATE, &[""], &["services/finalizers"]),
                r(
                    &["create", "delete", "get", "list", "update"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
                events(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                r(READ, &[""], &["services", "endpoints"]),
                r(
                    UPDATE,
                    &[""],
                    &["services/finalizers", "endpoints/finalizers"],
                ),
                r(
                    &["create", "delete", "get", "list", "update"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
                events(),
            ],
        ),
        (
            "ephemeral-volume-controller",
            vec![
                r(READ, &[""], &["pods"]),
                r(UPDATE, &[""], &["pods/finalizers"]),
                r(
                    &["create", "get", "list", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                events(),
            ],
        ),
        (
            "expand-controller",
            vec![
                r(
                    &["get", "list", "patch", "update", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(PATCH_UPDATE, &[""], &["persistentvolumeclaims/status"]),
                r(READ, &[""], &["persistentvolumeclaims"]),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(&["get"], &[""], &["endpoints", "services", "secrets"]),
                events(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![r(
                &["delete", "get", "list", "patch", "update", "watch"],
                &["*"],
                &["*"],
            )],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                r(READ, &["autoscaling"], &["horizontalpodautoscalers"]),
                r(
                    UPDATE,
                    &["autoscaling"],
                    &["horizontalpodautoscalers/status"],
                ),
                r(&["get", "update"], &["*"], &["*/scale"]),
                r(&["list"], &[""], &["pods"]),
                r(&["list"], &["metrics.k8s.io"], &["pods"]),
                r(
                    &["get", "list"],
                    &["custom.metrics.k8s.io", "external.metrics.k8s.io"],
                    &["*"],
                ),
                events(),
            ],
        ),
        (
            "job-controller",
            vec![
                r(&["get", "list", "update", "watch"], &["batch"], &["jobs"]),
                r(UPDATE, &["batch"], &["jobs/status", "jobs/finalizers"]),
                r(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                r(&["delete", "get", "list", "watch"], &[""], &["namespaces"]),
                r(UPDATE, &[""], &["namespaces/finalize", "namespaces/status"]),
                r(
                    &["delete", "deletecollection", "get", "list"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                r(
                    &["delete", "get", "list", "patch", "update"],
                    &[""],
                    &["nodes"],
                ),
                r(PATCH_UPDATE, &[""], &["nodes/status", "pods/status"]),
                r(&["delete", "list"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                r(
                    &["create", "delete", "get", "list", "update", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(
                    UPDATE,
                    &[""],
                    &["persistentvolumes/status", "persistentvolumeclaims/status"],
                ),
                r(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                r(
                    &["create", "delete", "get", "list", "watch"],
                    &[""],
                    &["pods"],
                ),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(&["get"], &[""], &["secrets"]),
                r(&["get", "list"], &[""], &["nodes"]),
                events(),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                r(&["delete", "list", "watch"], &[""], &["pods"]),
                r(&["patch"], &[""], &["pods/status"]),
                r(READ, &[""], &["nodes"]),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                r(
                    UPDATE,
                    &["apps", "extensions"],
                    &["replicasets/status", "replicasets/finalizers"],
                ),
                r(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "replication-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["replicationcontrollers"],
                ),
                r(
                    UPDATE,
                    &[""],
                    &[
                        "replicationcontrollers/status",
                        "replicationcontrollers/finalizers",
                    ],
                ),
                r(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                r(LIST_WATCH, &["*"], &["*"]),
                r(UPDATE, &[""], &["resourcequotas/status"]),
                events(),
            ],
        ),
        (
            "route-controller",
            vec![
                r(&["list"], &[""], &["nodes"]),
                r(&["patch"], &[""], &["nodes/status"]),
                events(),
            ],
        ),
        (
            "service-account-controller",
            vec![r(&["create"], &[""], &["serviceaccounts"]), events()],
        ),
        (
            "service-controller",
            vec![
                r(READ, &[""], &["services"]),
                r(PATCH_UPDATE, &[""], &["services/status"]),
                r(LIST_WATCH, &[""], &["nodes"]),
                events(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                r(READ, &[""], &["pods"]),
                r(READ, &["apps"], &["statefulsets"]),
                r(
                    UPDATE,
                    &["apps"],
                    &["statefulsets/status", "statefulsets/finalizers"],
                ),
                r(
                    &["create", "delete", "get", "patch", "update"],
                    &[""],
                    &["pods"],
                ),
                r(ALL, &["apps"], &["controllerrevisions"]),
                r(
                    &["create", "get", "update", "delete"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                events(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                r(&["list", "patch", "update", "watch"], &[""], &["nodes"]),
                events(),
            ],
        ),
        (
            "certificate-controller",
            vec![
                r(
                    &["delete", "get", "list", "watch"],
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                ),
                r(
                    UPDATE,
                    &["certificates.k8s.io"],
                    &[
                        "certificatesigningrequests/approval",
                        "certificatesigningrequests/status",
                    ],
                ),
                named(
                    &["approve"],
                    &["certificates.k8s.io"],
                    &["signers"],
                    &[
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ],
                ),
                named(
                    &["sign"],
                    &["certificates.k8s.io"],
                    &["signers"],
                    &[
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                        "kubernetes.io/legacy-unknown",
                    ],
                ),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                events(),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                r(READ, &[""], &["pods"]),
                events(),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                r(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                events(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                r(&["delete", "get", "list", "watch"], &["batch"], &["jobs"]),
                events(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![r(&["create", "update"], &[""], &["configmaps"]), events()],
        ),
        (
            "validatingadmissionpolicy-status-controller",
            vec![
                r(
                    READ,
                    &["admissionregistration.k8s.io"],
                    &["validatingadmissionpolicies"],
                ),
                r(
                    UPDATE,
                    &["admissionregistration.k8s.io"],
                    &["validatingadmissionpolicies/status"],
                ),
                events(),
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            vec![
                named(
                    &["get"],
                    &[""],
                    &["configmaps"],
                    &["kube-apiserver-legacy-service-account-token-tracking"],
                ),
                r(&["delete", "patch"], &[""], &["secrets"]),
            ],
        ),
        (
            "service-cidrs-controller",
            vec![
                r(READ, &["networking.k8s.io"], &["servicecidrs"]),
                r(
                    PATCH_UPDATE,
                    &["networking.k8s.io"],
                    &["servicecidrs/finalizers", "servicecidrs/status"],
                ),
                r(READ, &["networking.k8s.io"], &["ipaddresses"]),
                events(),
            ],
        ),
    ]
}

fn meta(ns: &str, name: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn ns_role(ns: &str, name: &str, rules: Vec<Value>) -> (&'static str, Value) {
    (
        "roles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(ns, name), "rules": rules}),
    )
}

fn ns_bind(ns: &str, name: &str, role: &str, subjects: &[&str]) -> (&'static str, Value) {
    let subjects: Vec<Value> = subjects.iter().map(|s| subject(s)).collect();
    (
        "rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(ns, name),
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": role}, "subjects": subjects}),
    )
}

/// The namespaced bootstrap roles and bindings of kube-system and kube-public.
fn namespaced() -> Vec<(&'static str, Value)> {
    const SYSTEM: &str = "kube-system";
    let lock = |name: &str| {
        vec![
            r(&["watch"], &[""], &["configmaps"]),
            named(&["get", "update"], &[""], &["configmaps"], &[name]),
        ]
    };
    vec![
        ns_role(
            SYSTEM,
            "extension-apiserver-authentication-reader",
            vec![named(
                &["get", "list", "watch"],
                &[""],
                &["configmaps"],
                &["extension-apiserver-authentication"],
            )],
        ),
        ns_role(
            SYSTEM,
            "system::leader-locking-kube-controller-manager",
            lock("kube-controller-manager"),
        ),
        ns_role(
            SYSTEM,
            "system::leader-locking-kube-scheduler",
            lock("kube-scheduler"),
        ),
        ns_role(
            SYSTEM,
            "system:controller:bootstrap-signer",
            vec![r(READ, &[""], &["secrets"])],
        ),
        ns_role(
            SYSTEM,
            "system:controller:cloud-provider",
            vec![r(
                &["create", "get", "list", "watch"],
                &[""],
                &["configmaps"],
            )],
        ),
        ns_role(
            SYSTEM,
            "system:controller:token-cleaner",
            vec![
                r(&["delete", "get", "list", "watch"], &[""], &["secrets"]),
                events(),
            ],
        ),
        ns_role(
            "kube-public",
            "system:controller:bootstrap-signer",
            vec![
                r(READ, &[""], &["configmaps"]),
                named(&["update"], &[""], &["configmaps"], &["cluster-info"]),
                events(),
            ],
        ),
        ns_bind(
            SYSTEM,
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            &[
                "User:system:kube-controller-manager",
                "User:system:kube-scheduler",
            ],
        ),
        ns_bind(
            SYSTEM,
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            &[
                "User:system:kube-controller-manager",
                "ServiceAccount:kube-system/kube-controller-manager",
            ],
        ),
        ns_bind(
            SYSTEM,
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            &[
                "User:system:kube-scheduler",
                "ServiceAccount:kube-system/kube-scheduler",
            ],
        ),
        ns_bind(
            SYSTEM,
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            &["ServiceAccount:kube-system/bootstrap-signer"],
        ),
        ns_bind(
            SYSTEM,
            "system:controller:cloud-provider",
            "system:controller:cloud-provider",
            &["ServiceAccount:kube-system/cloud-provider"],
        ),
        ns_bind(
            SYSTEM,
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            &["ServiceAccount:kube-system/token-cleaner"],
        ),
        ns_bind(
            "kube-public",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            &["ServiceAccount:kube-system/bootstrap-signer"],
        ),
    ]
}

pub fn objects() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for (name, rules) in controllers() {
        let full = format!("system:controller:{name}");
        out.push(role(&full, rules));
        out.push(bind(
            &full,
            &[&format!("ServiceAccount:kube-system/{name}")],
        ));
    }
    out.extend(namespaced());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_controller_role_is_bound_to_its_service_account() {
        let objs = super::objects();
        let binding = objs
            .iter()
            .find(|(r, o)| {
                *r == "clusterrolebindings"
                    && o["metadata"]["name"] == "system:controller:deployment-controller"
            })
            .unwrap();
        assert_eq!(binding.1["subjects"][0]["namespace"], "kube-system");
        assert_eq!(binding.1["subjects"][0]["name"], "deployment-controller");
        assert!(
            objs.iter()
                .any(|(r, o)| *r == "roles" && o["metadata"]["namespace"] == "kube-public")
        );
    }
}
