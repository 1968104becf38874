//! `kubeadm init phase upload-config` (upstream `phases/uploadconfig` and
//! `phases/kubelet/config.go`): the `kube-system/kubeadm-config` ConfigMap with the
//! ClusterConfiguration and `kube-system/kubelet-config` with the cluster-wide
//! KubeletConfiguration, each readable by joining nodes (bootstrap tokens) and nodes
//! through a Role of upstream's name.

use crate::app::apis::kubeadm::{ClusterConfiguration, DEFAULT_NODE_TOKEN_GROUP, InitConfig};
use crate::app::util::apiclient::{create_or_update, from_json};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::Api;
use serde_json::json;

pub const KUBEADM_CONFIG: &str = "kubeadm-config";
pub const KUBELET_CONFIG: &str = "kubelet-config";

/// A Role that may read one ConfigMap in kube-system, bound to joining and joined nodes.
async fn readable(client: &kube::Client, role: &str, config_map: &str) -> Result<(), String> {
    let roles: Api<Role> = Api::namespaced(client.clone(), "kube-system");
    create_or_update(
        &roles,
        &from_json(json!({"metadata": {"name": role, "namespace": "kube-system"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": [config_map]}]})),
    )
    .await?;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "kube-system");
    create_or_update(
        &bindings,
        &from_json(json!({"metadata": {"name": role, "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": DEFAULT_NODE_TOKEN_GROUP},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]})),
    )
    .await
}

pub async fn upload_kubeadm_config(client: &kube::Client, cfg: &InitConfig) -> Result<(), String> {
    println!(
        "[upload-config] Storing the configuration used in ConfigMap {KUBEADM_CONFIG:?} in the \"kube-system\" Namespace"
    );
    let text = serde_json::to_value(&cfg.cluster).map_err(|e| e.to_string())?;
    let yaml = serde_saphyr::to_string(&text).map_err(|e| e.to_string())?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    create_or_update(
        &cms,
        &from_json(
            json!({"metadata": {"name": KUBEADM_CONFIG, "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml}}),
        ),
    )
    .await?;
    readable(client, "kubeadm:nodes-kubeadm-config", KUBEADM_CONFIG).await
}

pub async fn upload_kubelet_config(client: &kube::Client, cfg: &InitConfig) -> Result<(), String> {
    println!(
        "[kubelet] Creating a ConfigMap {KUBELET_CONFIG:?} in namespace kube-system with the configuration for the kubelets in the cluster"
    );
    let yaml = serde_saphyr::to_string(&cfg.kubelet_configuration()?).map_err(|e| e.to_string())?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    create_or_update(
        &cms,
        &from_json(
            json!({"metadata": {"name": KUBELET_CONFIG, "namespace": "kube-system"},
            "data": {"kubelet": yaml}}),
        ),
    )
    .await?;
    readable(client, "kubeadm:kubelet-config", KUBELET_CONFIG).await
}

/// One key of a kube-system ConfigMap kubeadm keeps.
async fn fetch(client: &kube::Client, name: &str, key: &str) -> Result<String, String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get(name)
        .await
        .map_err(|e| format!("failed to get config map {name}: {e}"))?;
    cm.data
        .unwrap_or_default()
        .get(key)
        .cloned()
        .ok_or_else(|| format!("the {name} ConfigMap has no {key:?} key"))
}

/// The cluster's ClusterConfiguration, as `kubeadm init` (or the last upgrade) stored it.
pub async fn fetch_cluster_configuration(
    client: &kube::Client,
) -> Result<ClusterConfiguration, String> {
    let text = fetch(client, KUBEADM_CONFIG, "ClusterConfiguration").await?;
    serde_saphyr::from_str(&text).map_err(|e| format!("the cluster's ClusterConfiguration: {e}"))
}

/// The cluster-wide KubeletConfiguration (YAML), as every node's kubelet runs it.
pub async fn fetch_kubelet_configuration(client: &kube::Client) -> Result<String, String> {
    fetch(client, KUBELET_CONFIG, "kubelet").await
}
