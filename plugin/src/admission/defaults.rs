//! The small defaulting plugins: DefaultTolerationSeconds, TaintNodesByCondition,
//! StorageObjectInUseProtection, DefaultStorageClass and DefaultIngressClass (upstream
//! `plugin/pkg/admission/{defaulttolerationseconds,nodetaint,storage/...,network/...}`).

use super::list;
use apimachinery::StatusError;
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

fn creating<'a>(
    a: &Attributes<'_>,
    group: &str,
    resource: &str,
    obj: Option<&'a mut Value>,
) -> Option<&'a mut Value> {
    (a.is(group, resource) && a.subresource.is_empty() && a.operation == Operation::Create)
        .then_some(obj)
        .flatten()
}

fn push(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        a.push(item);
    }
}

/// Pods tolerate not-ready and unreachable nodes for 300 s unless they say otherwise.
pub struct DefaultTolerationSeconds {
    pub seconds: i64,
}

#[async_trait]
impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = creating(a, "", "pods", obj) else {
            return Ok(());
        };
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = pod["spec"]["tolerations"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    let effect_ok = t["effect"]
                        .as_str()
                        .is_none_or(|e| e.is_empty() || e == "NoExecute");
                    let key_ok = t["key"] == key
                        || (t["key"].as_str().is_none_or(str::is_empty)
                            && t["operator"] == "Exists");
                    effect_ok && key_ok
                });
            if !tolerated {
                push(
                    &mut pod["spec"]["tolerations"],
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": self.seconds}),
                );
            }
        }
        Ok(())
    }
}

/// New nodes start tainted not-ready until the node lifecycle controller sees them ready.
pub struct TaintNodesByCondition;

#[async_trait]
impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(node) = creating(a, "", "nodes", obj) else {
            return Ok(());
        };
        let key = "node.kubernetes.io/not-ready";
        let has = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == key && t["effect"] == "NoSchedule");
        if !has {
            push(
                &mut node["spec"]["taints"],
                json!({"key": key, "effect": "NoSchedule"}),
            );
        }
        Ok(())
    }
}

/// PVCs and PVs get the protection finalizers that keep them while in use.
pub struct StorageObjectInUseProtection;

#[async_trait]
impl Plugin for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    async fn admit(
        &self,
        a: &Attributes<'_>,
        mut obj: Option<&mut Value>,
    ) -> Result<(), StatusError> {
        for (resource, finalizer) in [
            ("persistentvolumeclaims", "kubernetes.io/pvc-protection"),
            ("persistentvolumes", "kubernetes.io/pv-protection"),
        ] {
            if let Some(o) = creating(a, "", resource, obj.as_deref_mut()) {
                let present = o["metadata"]["finalizers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f == finalizer);
                if !present {
                    push(&mut o["metadata"]["finalizers"], json!(finalizer));
                }
            }
        }
        Ok(())
    }
}

/// The class marked default by `annotation` (the newest if several).
async fn default_class(reg: &Registry, annotation: &str) -> Option<String> {
    list(reg, None)
        .await
        .into_iter()
        .filter(|c| c["metadata"]["annotations"][annotation] == "true")
        .max_by(|x, y| {
            x["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&y["metadata"]["creationTimestamp"].as_str())
                .then_with(|| {
                    y["metadata"]["name"]
                        .as_str()
                        .cmp(&x["metadata"]["name"].as_str())
                })
        })
        .and_then(|c| c["metadata"]["name"].as_str().map(String::from))
}

/// A PVC that names no class (field absent, not "") gets the default StorageClass.
pub struct DefaultStorageClass {
    pub classes: Arc<Registry>,
}

#[async_trait]
impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pvc) = creating(a, "", "persistentvolumeclaims", obj) else {
            return Ok(());
        };
        if !pvc["spec"]["storageClassName"].is_null() {
            return Ok(());
        }
        if let Some(class) =
            default_class(&self.classes, "storageclass.kubernetes.io/is-default-class").await
        {
            pvc["spec"]["storageClassName"] = json!(class);
        }
        Ok(())
    }
}

/// An Ingress that names no class gets the default IngressClass.
pub struct DefaultIngressClass {
    pub classes: Arc<Registry>,
}

#[async_trait]
impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(ing) = creating(a, "networking.k8s.io", "ingresses", obj) else {
            return Ok(());
        };
        if !ing["spec"]["ingressClassName"].is_null()
            || ing["metadata"]["annotations"]["kubernetes.io/ingress.class"].is_string()
        {
            return Ok(());
        }
        if let Some(class) =
            default_class(&self.classes, "ingressclass.kubernetes.io/is-default-class").await
        {
            ing["spec"]["ingressClassName"] = json!(class);
        }
        Ok(())
    }
}
