//! NodeRestriction (upstream `plugin/pkg/admission/noderestriction`): a kubelet
//! (`system:node:<name>` in `system:nodes`) may only change its own Node (not its taints,
//! not `node-restriction.kubernetes.io/` labels), its own Lease and CSINode, the status of
//! pods bound to it, and create only mirror pods bound to itself.

use super::get;
use apimachinery::StatusError;
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

pub struct NodeRestriction {
    pub pods: Arc<Registry>,
}

const MIRROR: &str = "kubernetes.io/config.mirror";

/// The node a request comes from, if a kubelet makes it.
fn node_name<'a>(a: &'a Attributes<'_>) -> Option<&'a str> {
    let u = a.user?;
    if !u.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    u.name.strip_prefix("system:node:")
}

fn labels_under(obj: &Value, prefix: &str) -> Vec<String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            k.split('/')
                .next()
                .is_some_and(|d| d == prefix || d.ends_with(&format!(".{prefix}")))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

impl NodeRestriction {
    async fn pod_node(&self, a: &Attributes<'_>) -> Option<String> {
        let pod = match a.old {
            Some(p) => p.clone(),
            None => get(&self.pods, Some(a.namespace), a.name).await?,
        };
        pod["spec"]["nodeName"].as_str().map(String::from)
    }
}

#[async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(node) = node_name(a) else {
            return Ok(());
        };
        let forbid = |m: String| StatusError::forbidden(&a.resource, a.name, &m);
        match (
            a.resource.group.as_str(),
            a.resource.resource.as_str(),
            a.subresource,
        ) {
            ("", "pods", "") => match a.operation {
                Operation::Create => {
                    let pod = obj.cloned().unwrap_or_default();
                    if !pod["metadata"]["annotations"][MIRROR].is_string() {
                        return Err(forbid(format!(
                            "pod does not have \"{MIRROR}\" annotation, node {node:?} can only create mirror pods"
                        )));
                    }
                    if pod["spec"]["nodeName"] != node {
                        return Err(forbid(format!(
                            "node {node:?} can only create pods with spec.nodeName set to itself"
                        )));
                    }
                    let refs_secret_like = pod["spec"]["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|v| {
                            v["secret"].is_object()
                                || v["configMap"].is_object()
                                || v["persistentVolumeClaim"].is_object()
                                || v["projected"].is_object()
                        });
                    if refs_secret_like
                        || pod["spec"]["serviceAccountName"]
                            .as_str()
                            .is_some_and(|s| !s.is_empty())
                    {
                        return Err(forbid(format!(
                            "node {node:?} can not create pods that reference secrets, configmaps, service accounts or persistent volume claims"
                        )));
                    }
                    Ok(())
                }
                Operation::Delete => {
                    if self.pod_node(a).await.as_deref() != Some(node) {
                        return Err(forbid(format!(
                            "node {node:?} can only delete pods with spec.nodeName set to itself"
                        )));
                    }
                    Ok(())
                }
                op => Err(forbid(format!(
                    "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                    op.as_str()
                ))),
            },
            ("", "pods", "status") => {
                if self.pod_node(a).await.as_deref() != Some(node) {
                    return Err(forbid(format!(
                        "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                    )));
                }
                Ok(())
            }
            ("", "pods", "eviction") => {
                if self.pod_node(a).await.as_deref() != Some(node) {
                    return Err(forbid(format!(
                        "node {node:?} can only evict pods with spec.nodeName set to itself"
                    )));
                }
                Ok(())
            }
            ("", "nodes", _) => {
                if a.name != node {
                    return Err(forbid(format!(
                        "node {node:?} is not allowed to modify node {:?}",
                        a.name
                    )));
                }
                let Some(new) = obj else { return Ok(()) };
                let restricted = labels_under(new, "node-restriction.kubernetes.io");
                let old_restricted = a
                    .old
                    .map(|o| labels_under(o, "node-restriction.kubernetes.io"))
                    .unwrap_or_default();
                let changed: Vec<&String> = restricted
                    .iter()
                    .filter(|k| {
                        !old_restricted.contains(k)
                            || a.old.is_some_and(|o| {
                                o["metadata"]["labels"][k.as_str()]
                                    != new["metadata"]["labels"][k.as_str()]
                            })
                    })
                    .collect();
                if !changed.is_empty() {
                    return Err(forbid(format!(
                        "is not allowed to modify labels: {}",
                        changed
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                if a.operation == Operation::Update
                    && a.subresource.is_empty()
                    && a.old
                        .is_some_and(|o| o["spec"]["taints"] != new["spec"]["taints"])
                {
                    return Err(forbid(format!(
                        "node {node:?} is not allowed to modify taints"
                    )));
                }
                Ok(())
            }
            ("coordination.k8s.io", "leases", _) if a.namespace == "kube-node-lease" => {
                if a.name != node {
                    return Err(forbid(
                        "can only access node lease with the same name as the requesting node"
                            .into(),
                    ));
                }
                Ok(())
            }
            ("storage.k8s.io", "csinodes", _) => {
                if a.name != node {
                    return Err(forbid(
                        "can only access CSINode with the same name as the requesting node".into(),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
