//! `kubeadm init phase addon kube-proxy` (upstream `phases/addons/proxy/proxy.go`): the
//! kube-proxy ServiceAccount with `system:node-proxier`, the `kube-proxy` ConfigMap
//! (`config.conf`, a KubeProxyConfiguration, and `kubeconfig.conf`, which authenticates
//! with the pod's service account token), readable by joining nodes, and the kube-proxy
//! DaemonSet on every node (host network, privileged, `system-node-critical`).

use crate::app::apis::kubeadm::{DEFAULT_NODE_TOKEN_GROUP, InitConfig};
use crate::app::util::apiclient::{create_or_update, from_json};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::Api;
use serde_json::{Value, json};

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `kubeconfig.conf`: the control-plane endpoint, trusted through the service account's
/// CA bundle, with the pod's projected token (re-read as it rotates).
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: {SA_DIR}/ca.crt\n    server: {server}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: {SA_DIR}/token\n"
    )
}

/// `config.conf`: the KubeProxyConfiguration every node's kube-proxy runs with.
pub fn config(cfg: &InitConfig) -> Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "clusterCIDR": cfg.cluster.networking.pod_subnet,
        "mode": "",
    })
}

pub fn daemon_set(cfg: &InitConfig) -> Value {
    json!({
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "containers": [{
                        "name": "kube-proxy",
                        "image": cfg.image("kube-proxy"),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                            {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true},
                        ],
                    }],
                    "hostNetwork": true,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    ],
                },
            },
        },
    })
}

pub async fn ensure(client: &kube::Client, cfg: &InitConfig) -> Result<(), String> {
    let ns = "kube-system";
    create_or_update(
        &Api::<ServiceAccount>::namespaced(client.clone(), ns),
        &from_json(json!({"metadata": {"name": "kube-proxy", "namespace": ns}})),
    )
    .await?;
    create_or_update(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &from_json(json!({"metadata": {"name": "kubeadm:node-proxier"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-proxier"},
            "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": ns}]})),
    )
    .await?;
    let config =
        serde_saphyr::to_string(&config(cfg)).map_err(|e| format!("kube-proxy config: {e}"))?;
    create_or_update(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &from_json(json!({"metadata": {"name": "kube-proxy", "namespace": ns, "labels": {"app": "kube-proxy"}},
            "data": {"config.conf": config, "kubeconfig.conf": kubeconfig(&cfg.control_plane_url())}})),
    )
    .await?;
    create_or_update(
        &Api::<Role>::namespaced(client.clone(), ns),
        &from_json(json!({"metadata": {"name": "kube-proxy", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["kube-proxy"]}]})),
    )
    .await?;
    create_or_update(
        &Api::<RoleBinding>::namespaced(client.clone(), ns),
        &from_json(json!({"metadata": {"name": "kube-proxy", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-proxy"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": DEFAULT_NODE_TOKEN_GROUP}]})),
    )
    .await?;
    create_or_update(
        &Api::<DaemonSet>::namespaced(client.clone(), ns),
        &from_json(daemon_set(cfg)),
    )
    .await?;
    println!("[addons] Applied essential addon: kube-proxy");
    Ok(())
}
