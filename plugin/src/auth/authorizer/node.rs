//! The Node authorizer (upstream `plugin/pkg/auth/authorizer/node`): a kubelet
//! (`system:node:<name>` in `system:nodes`) may read only the secrets, configmaps and
//! persistent volume claims that pods bound to its node reference (and update those
//! claims' status, for expansion), the persistent volumes bound to those claims and the
//! secrets those volumes name, plus the fixed set of rules every node needs. It has no
//! opinion on anyone else.

use super::rbac::rule_allows;
use apiserver::authorization::{Attributes, Authorizer};
use apiserver::registry::generic::Registry;
use apiserver::registry::options::ListOptions;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub struct NodeAuthorizer {
    pub pods: Arc<Registry>,
    pub claims: Arc<Registry>,
    pub volumes: Arc<Registry>,
}

/// What every node may do regardless of its pods (upstream `NodeRules`).
static NODE_RULES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let r = |verbs: &[&str], group: &str, resources: &[&str]| json!({"verbs": verbs, "apiGroups": [group], "resources": resources});
    vec![
        r(
            &["get", "list", "watch"],
            "",
            &["services", "endpoints", "nodes", "pods"],
        ),
        r(
            &["create", "update", "patch", "delete"],
            "",
            &["nodes", "nodes/status"],
        ),
        r(&["create", "delete"], "", &["pods"]),
        r(&["update", "patch"], "", &["pods/status"]),
        r(&["create"], "", &["pods/eviction"]),
        r(&["create", "update", "patch"], "", &["events"]),
        r(&["create", "update", "patch"], "events.k8s.io", &["events"]),
        r(
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
            "coordination.k8s.io",
            &["leases"],
        ),
        r(
            &["get", "list", "watch"],
            "storage.k8s.io",
            &["csidrivers", "volumeattachments"],
        ),
        r(
            &["get", "create", "update", "patch", "delete"],
            "storage.k8s.io",
            &["csinodes"],
        ),
        r(
            &["get", "list", "watch"],
            "node.k8s.io",
            &["runtimeclasses"],
        ),
        r(&["create"], "authentication.k8s.io", &["tokenreviews"]),
        r(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        r(
            &["create", "get", "list", "watch"],
            "certificates.k8s.io",
            &["certificatesigningrequests"],
        ),
    ]
});

/// Whether a pod spec references the object (by kind) with this name.
pub fn pod_references(spec: &Value, resource: &str, name: &str) -> bool {
    let s = |v: &Value| v.as_str() == Some(name);
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .collect::<Vec<_>>();
    match resource {
        "secrets" => {
            spec["imagePullSecrets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| s(&p["name"]))
                || volumes.clone().any(|v| {
                    s(&v["secret"]["secretName"])
                        || v["projected"]["sources"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| s(&p["secret"]["name"]))
                        || [
                            "cephfs",
                            "cinder",
                            "flexVolume",
                            "iscsi",
                            "rbd",
                            "scaleIO",
                            "storageos",
                            "csi",
                        ]
                        .iter()
                        .any(|k| {
                            s(&v[*k]["secretRef"]["name"])
                                || s(&v[*k]["nodePublishSecretRef"]["name"])
                        })
                })
                || containers.iter().any(|c| {
                    c["env"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| s(&e["valueFrom"]["secretKeyRef"]["name"]))
                        || c["envFrom"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|e| s(&e["secretRef"]["name"]))
                })
        }
        "configmaps" => {
            volumes.clone().any(|v| {
                s(&v["configMap"]["name"])
                    || v["projected"]["sources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| s(&p["configMap"]["name"]))
            }) || containers.iter().any(|c| {
                c["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| s(&e["valueFrom"]["configMapKeyRef"]["name"]))
                    || c["envFrom"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| s(&e["configMapRef"]["name"]))
            })
        }
        "persistentvolumeclaims" => volumes
            .clone()
            .any(|v| s(&v["persistentVolumeClaim"]["claimName"])),
        _ => false,
    }
}

/// The claims a pod uses: its `persistentVolumeClaim` volumes and its generic ephemeral
/// volumes' claims (`<pod>-<volume>`).
pub fn claims_of(spec: &Value, pod: &str) -> Vec<String> {
    spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = v["persistentVolumeClaim"]["claimName"].as_str() {
                Some(c.to_string())
            } else if v.get("ephemeral").is_some_and(|e| !e.is_null()) {
                Some(format!("{pod}-{}", v["name"].as_str().unwrap_or_default()))
            } else {
                None
            }
        })
        .collect()
}

/// The secrets a persistent volume names: (namespace, name).
pub fn volume_secrets(pv: &Value) -> Vec<(String, String)> {
    let spec = &pv["spec"];
    let mut out = Vec::new();
    let mut add = |r: &Value| {
        if let Some(n) = r["name"].as_str() {
            out.push((
                r["namespace"].as_str().unwrap_or_default().to_string(),
                n.to_string(),
            ));
        }
    };
    for field in [
        "nodeStageSecretRef",
        "nodePublishSecretRef",
        "nodeExpandSecretRef",
        "controllerPublishSecretRef",
        "controllerExpandSecretRef",
    ] {
        add(&spec["csi"][field]);
    }
    for k in [
        "cephfs",
        "cinder",
        "flexVolume",
        "iscsi",
        "rbd",
        "scaleIO",
        "storageos",
        "azureFile",
    ] {
        add(&spec[k]["secretRef"]);
    }
    out
}

#[async_trait]
impl Authorizer for NodeAuthorizer {
    async fn allows(&self, a: &Attributes) -> bool {
        let Some(node) = a.user.name.strip_prefix("system:node:") else {
            return false;
        };
        if !a.user.groups.iter().any(|g| g == "system:nodes") {
            return false;
        }
        let graph_resource = a.resource_request
            && a.api_group.is_empty()
            && a.subresource.is_empty()
            && matches!(
                a.resource.as_str(),
                "secrets" | "configmaps" | "persistentvolumeclaims" | "persistentvolumes"
            );
        // A claim's status, for the kubelet finishing an expansion (upstream
        // `authorizeStatusUpdate`).
        let claim_status = a.resource_request
            && a.api_group.is_empty()
            && a.resource == "persistentvolumeclaims"
            && a.subresource == "status";
        if claim_status {
            return matches!(a.verb.as_str(), "get" | "update" | "patch")
                && !a.name.is_empty()
                && self
                    .node_claims(node)
                    .await
                    .iter()
                    .any(|(ns, c)| *ns == a.namespace && *c == a.name);
        }
        // Tokens for a ServiceAccount a pod on this node runs as (upstream
        // `authorizeCreateToken`; NodeRestriction checks the bound pod).
        let token_request = a.resource_request
            && a.api_group.is_empty()
            && a.resource == "serviceaccounts"
            && a.subresource == "token";
        if token_request {
            if a.verb != "create" || a.name.is_empty() {
                return false;
            }
            let Ok(pods) = self
                .pods
                .list(Some(&a.namespace), &ListOptions::cached())
                .await
            else {
                return false;
            };
            return pods.items.iter().map(|o| &o.value).any(|p| {
                p["spec"]["nodeName"].as_str() == Some(node)
                    && p["spec"]["serviceAccountName"]
                        .as_str()
                        .unwrap_or("default")
                        == a.name
            });
        }
        if !graph_resource {
            return NODE_RULES.iter().any(|r| rule_allows(r, a));
        }
        // Only reads of one named object (a get, or a list/watch whose field selector
        // names it), of objects a pod on this node references.
        if !matches!(a.verb.as_str(), "get" | "list" | "watch") || a.name.is_empty() {
            return false;
        }
        match a.resource.as_str() {
            "persistentvolumeclaims" => {
                return self
                    .node_claims(node)
                    .await
                    .iter()
                    .any(|(ns, c)| *ns == a.namespace && *c == a.name);
            }
            "persistentvolumes" => {
                return self
                    .node_volumes(node)
                    .await
                    .iter()
                    .any(|pv| pv["metadata"]["name"].as_str() == Some(a.name.as_str()));
            }
            "secrets" => {
                let via_volume = self.node_volumes(node).await.iter().any(|pv| {
                    volume_secrets(pv)
                        .iter()
                        .any(|(ns, n)| *ns == a.namespace && *n == a.name)
                });
                if via_volume {
                    return true;
                }
            }
            _ => {}
        }
        let Ok(pods) = self
            .pods
            .list(Some(&a.namespace), &ListOptions::cached())
            .await
        else {
            return false;
        };
        pods.items.iter().map(|o| &o.value).any(|p| {
            p["spec"]["nodeName"].as_str() == Some(node)
                && pod_references(&p["spec"], &a.resource, &a.name)
        })
    }
}

impl NodeAuthorizer {
    /// (namespace, name) of every claim a pod on the node uses.
    async fn node_claims(&self, node: &str) -> Vec<(String, String)> {
        let Ok(pods) = self.pods.list(None, &ListOptions::cached()).await else {
            return Vec::new();
        };
        pods.items
            .iter()
            .map(|o| &o.value)
            .filter(|p| p["spec"]["nodeName"].as_str() == Some(node))
            .flat_map(|p| {
                let ns = p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let pod = p["metadata"]["name"].as_str().unwrap_or_default();
                claims_of(&p["spec"], pod)
                    .into_iter()
                    .map(move |c| (ns.clone(), c))
            })
            .collect()
    }

    /// The persistent volumes bound to the claims of the node's pods.
    async fn node_volumes(&self, node: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for (ns, claim) in self.node_claims(node).await {
            let Ok(c) = self.claims.get_cached_or_stored(Some(&ns), &claim).await else {
                continue;
            };
            let Some(pv) = c["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) else {
                continue;
            };
            if let Ok(v) = self.volumes.get_cached_or_stored(None, pv).await {
                out.push(v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let spec = json!({"volumes": [{"name": "v", "secret": {"secretName": "tls"}}, {"name": "c", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}], "envFrom": [{"secretRef": {"name": "env"}}]}],
            "imagePullSecrets": [{"name": "pull"}]});
        for (r, n) in [
            ("secrets", "tls"),
            ("secrets", "env"),
            ("secrets", "pull"),
            ("configmaps", "cfg"),
            ("persistentvolumeclaims", "data"),
        ] {
            assert!(pod_references(&spec, r, n), "{r}/{n}");
        }
        assert!(!pod_references(&spec, "secrets", "other"));
        let spec = json!({"volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]});
        assert_eq!(claims_of(&spec, "web-0"), ["data", "web-0-scratch"]);
        let pv = json!({"spec": {"csi": {"nodeStageSecretRef": {"name": "k", "namespace": "ns"}}}});
        assert_eq!(volume_secrets(&pv), [("ns".to_string(), "k".to_string())]);
        assert!(!pod_references(&spec, "configmaps", "tls"));
    }
}
