//! The small off-by-default plugins (upstream `plugin/pkg/admission/{admit,deny,
//! alwayspullimages,network/denyserviceexternalips,antiaffinity,namespace/exists,
//! namespace/autoprovision,extendedresourcetoleration,podtopologylabels}`).

use super::get;
use apimachinery::{Cause, GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// A create or update of the main resource `group`/`resource`.
fn writes(a: &Attributes<'_>, group: &str, resource: &str) -> bool {
    a.is(group, resource)
        && a.subresource.is_empty()
        && matches!(a.operation, Operation::Create | Operation::Update)
}

fn containers_mut(pod: &mut Value) -> impl Iterator<Item = &mut Value> {
    let spec = &mut pod["spec"];
    let mut out = Vec::new();
    if let Some(spec) = spec.as_object_mut() {
        for (k, v) in spec.iter_mut() {
            if matches!(
                k.as_str(),
                "containers" | "initContainers" | "ephemeralContainers"
            ) && let Some(list) = v.as_array_mut()
            {
                out.extend(list.iter_mut());
            }
        }
    }
    out.into_iter()
}

/// `AlwaysAdmit`: admits everything (deprecated upstream, kept for its name).
pub struct AlwaysAdmit;

#[async_trait]
impl Plugin for AlwaysAdmit {
    fn name(&self) -> &'static str {
        "AlwaysAdmit"
    }
}

/// A default-on plugin whose API is off by default upstream (behind a feature gate) and
/// not served here (ClusterTrustBundleAttest, MutatingAdmissionPolicy): no object of its
/// kind can exist, so, as upstream's with its gate off, it has nothing to admit.
pub struct ApiNotServed(pub &'static str);

#[async_trait]
impl Plugin for ApiNotServed {
    fn name(&self) -> &'static str {
        self.0
    }
}

/// `AlwaysDeny`: refuses every write.
pub struct AlwaysDeny;

#[async_trait]
impl Plugin for AlwaysDeny {
    fn name(&self) -> &'static str {
        "AlwaysDeny"
    }

    async fn admit(&self, a: &Attributes<'_>, _obj: Option<&mut Value>) -> Result<(), StatusError> {
        Err(StatusError::forbidden(
            &a.resource,
            a.name,
            "admission control is denying all modifications",
        ))
    }
}

/// `AlwaysPullImages`: every container of a pod pulls its image, so a pod cannot use an
/// image another tenant pulled without the credentials to pull it itself.
pub struct AlwaysPullImages;

#[async_trait]
impl Plugin for AlwaysPullImages {
    fn name(&self) -> &'static str {
        "AlwaysPullImages"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        if let Some(pod) = obj.filter(|_| writes(a, "", "pods")) {
            for c in containers_mut(pod) {
                c["imagePullPolicy"] = json!("Always");
            }
        }
        Ok(())
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(pod) = obj.filter(|_| writes(a, "", "pods")) else {
            return Ok(());
        };
        let mut causes = Vec::new();
        for field in ["initContainers", "containers", "ephemeralContainers"] {
            for (i, c) in pod["spec"][field]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if c["imagePullPolicy"] != "Always" {
                    causes.push(Cause::not_supported(
                        &format!("spec.{field}[{i}].imagePullPolicy"),
                        &c["imagePullPolicy"],
                        &["Always"],
                    ));
                }
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        Err(StatusError::invalid("", "Pod", a.name, causes))
    }
}

/// `DenyServiceExternalIPs`: no new `spec.externalIPs` on Services.
pub struct DenyServiceExternalIPs;

#[async_trait]
impl Plugin for DenyServiceExternalIPs {
    fn name(&self) -> &'static str {
        "DenyServiceExternalIPs"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(svc) = obj.filter(|_| writes(a, "", "services")) else {
            return Ok(());
        };
        let ips = |s: &Value| -> Vec<String> {
            s["spec"]["externalIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let old = a.old.map(ips).unwrap_or_default();
        // Removing addresses is allowed; adding any is not.
        if ips(svc).iter().any(|ip| !old.contains(ip)) {
            return Err(StatusError::forbidden(
                &a.resource,
                a.name,
                "use of external IPs is denied by admission control",
            ));
        }
        Ok(())
    }
}

/// `LimitPodHardAntiAffinityTopology`: required pod anti-affinity only per host.
pub struct LimitPodHardAntiAffinityTopology;

#[async_trait]
impl Plugin for LimitPodHardAntiAffinityTopology {
    fn name(&self) -> &'static str {
        "LimitPodHardAntiAffinityTopology"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(pod) = obj.filter(|_| writes(a, "", "pods")) else {
            return Ok(());
        };
        let terms = &pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        for t in terms.as_array().into_iter().flatten() {
            let key = t["topologyKey"].as_str().unwrap_or_default();
            if key != "kubernetes.io/hostname" {
                return Err(StatusError::forbidden(
                    &a.resource,
                    a.name,
                    &format!(
                        "affinity.PodAntiAffinity.RequiredDuringScheduling has TopologyKey {key} but only key kubernetes.io/hostname is allowed"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a write in a namespace needs that namespace (not namespaces themselves, and
/// not the access reviews that name one).
fn in_namespace(a: &Attributes<'_>) -> bool {
    !a.namespace.is_empty() && a.resource != GroupResource::new("", "namespaces")
}

/// `NamespaceExists`: writes into a namespace that does not exist are refused.
pub struct NamespaceExists {
    pub namespaces: Arc<Registry>,
}

#[async_trait]
impl Plugin for NamespaceExists {
    fn name(&self) -> &'static str {
        "NamespaceExists"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        _obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        if !in_namespace(a) || get(&self.namespaces, None, a.namespace).await.is_some() {
            return Ok(());
        }
        Err(StatusError::not_found(
            &GroupResource::new("", "namespaces"),
            a.namespace,
        ))
    }
}

/// `NamespaceAutoProvision`: a create into a missing namespace creates the namespace.
pub struct NamespaceAutoProvision {
    pub namespaces: Arc<Registry>,
}

#[async_trait]
impl Plugin for NamespaceAutoProvision {
    fn name(&self) -> &'static str {
        "NamespaceAutoProvision"
    }

    async fn admit(&self, a: &Attributes<'_>, _obj: Option<&mut Value>) -> Result<(), StatusError> {
        if a.operation != Operation::Create
            || !in_namespace(a)
            || a.dry_run
            || get(&self.namespaces, None, a.namespace).await.is_some()
        {
            return Ok(());
        }
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": a.namespace, "labels": {"kubernetes.io/metadata.name": a.namespace}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        match self.namespaces.create(None, ns, false).await {
            Err(e) if e.code != 409 => Err(e),
            _ => Ok(()),
        }
    }
}

/// Upstream `helper.IsExtendedResourceName`: a domain-prefixed name outside
/// `kubernetes.io`, not a quota `requests.` name.
fn is_extended_resource(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native && !name.starts_with("requests.")
}

/// `ExtendedResourceToleration`: pods that ask for an extended resource tolerate the
/// `NoSchedule` taint of that resource's name (nodes dedicated to it carry it).
pub struct ExtendedResourceToleration;

#[async_trait]
impl Plugin for ExtendedResourceToleration {
    fn name(&self) -> &'static str {
        "ExtendedResourceToleration"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = obj.filter(|_| writes(a, "", "pods")) else {
            return Ok(());
        };
        let mut resources = std::collections::BTreeSet::new();
        for c in containers_mut(pod) {
            for part in ["requests", "limits"] {
                for k in c["resources"][part]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    if is_extended_resource(k) {
                        resources.insert(k.clone());
                    }
                }
            }
        }
        for r in resources {
            let tolerations = &mut pod["spec"]["tolerations"];
            if !tolerations.is_array() {
                *tolerations = json!([]);
            }
            let list = tolerations.as_array_mut().unwrap();
            let present = list.iter().any(|t| {
                t["key"] == r.as_str()
                    && t["operator"] == "Exists"
                    && t["effect"]
                        .as_str()
                        .is_none_or(|e| e.is_empty() || e == "NoSchedule")
            });
            if !present {
                list.push(json!({"key": r, "operator": "Exists", "effect": "NoSchedule"}));
            }
        }
        Ok(())
    }
}

/// `PodTopologyLabels`: a pod bound to a node takes the node's zone and region labels
/// (through the Binding, which the binding subresource copies onto the pod).
pub struct PodTopologyLabels {
    pub nodes: Arc<Registry>,
}

const TOPOLOGY_LABELS: [&str; 2] = [
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
];

#[async_trait]
impl Plugin for PodTopologyLabels {
    fn name(&self) -> &'static str {
        "PodTopologyLabels"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let binding =
            a.is("", "pods") && a.subresource == "binding" && a.operation == Operation::Create;
        let Some(b) = obj.filter(|_| binding) else {
            return Ok(());
        };
        let node = b["target"]["name"].as_str().unwrap_or_default().to_string();
        let Some(node) = get(&self.nodes, None, &node).await else {
            return Ok(());
        };
        for key in TOPOLOGY_LABELS {
            if let Some(v) = node["metadata"]["labels"][key].as_str() {
                if !b["metadata"]["labels"].is_object() {
                    b["metadata"]["labels"] = json!({});
                }
                b["metadata"]["labels"][key] = json!(v);
            }
        }
        Ok(())
    }
}

/// `PersistentVolumeClaimResize`: a claim grows only when it is bound and its
/// StorageClass allows expansion.
pub struct PersistentVolumeClaimResize {
    pub classes: Arc<Registry>,
}

#[async_trait]
impl Plugin for PersistentVolumeClaimResize {
    fn name(&self) -> &'static str {
        "PersistentVolumeClaimResize"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        use apimachinery::resource::Quantity;
        let update = a.is("", "persistentvolumeclaims")
            && a.subresource.is_empty()
            && a.operation == Operation::Update;
        let (Some(pvc), Some(old)) = (obj.filter(|_| update), a.old) else {
            return Ok(());
        };
        let size = |c: &Value| {
            c["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .and_then(Quantity::parse)
                .unwrap_or_default()
        };
        if size(pvc) <= size(old) {
            return Ok(());
        }
        let forbidden = |m: &str| Err(StatusError::forbidden(&a.resource, a.name, m));
        if old["status"]["phase"] != "Bound" {
            return forbidden("Only bound persistent volume claims can be expanded");
        }
        let class = |c: &Value| {
            c["spec"]["storageClassName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let name = class(pvc);
        let allowed = !name.is_empty()
            && name == class(old)
            && get(&self.classes, None, &name)
                .await
                .is_some_and(|sc| sc["allowVolumeExpansion"] == true);
        if !allowed {
            return forbidden(
                "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
            );
        }
        Ok(())
    }
}
