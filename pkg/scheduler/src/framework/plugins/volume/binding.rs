//! VolumeBinding (upstream `volumebinding`): a pod's claims must exist; bound claims'
//! volumes must be reachable from the node (PV node affinity); unbound claims of a
//! `WaitForFirstConsumer` class need, on the node, a free matching volume or a class
//! that provisions (within its allowedTopologies); unbound claims of an `Immediate`
//! class wait for the PV controller. After a node is chosen the binding cycle claims the
//! matched volumes (PV `claimRef`) or asks for provisioning there
//! (`volume.kubernetes.io/selected-node`) and waits for every claim to be bound.

use super::claim_names;
use crate::framework::plugins::nodeaffinity::term_matches;
use crate::framework::{
    BindContext, CycleState, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot, Status, Volumes,
};
use apimachinery::resource::Quantity;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const ERR_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const ERR_NOT_ENOUGH_SPACE: &str = "node(s) did not have enough free storage";
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

const KEY: &str = "PreFilterVolumeBinding";
const PLAN_KEY: &str = "ReserveVolumeBinding";

pub struct VolumeBinding {
    pub assumed: Arc<AssumedVolumes>,
}

/// Volumes chosen for pods whose binding is under way (upstream's assume cache), so two
/// pods do not take the same one; shared by every profile.
#[derive(Default)]
pub struct AssumedVolumes {
    /// pod uid -> the volumes Reserve chose for it.
    by_pod: Mutex<HashMap<String, Vec<String>>>,
}

impl AssumedVolumes {
    pub fn assume(&self, pod_uid: &str, volumes: Vec<String>) {
        self.by_pod
            .lock()
            .unwrap()
            .insert(pod_uid.to_string(), volumes);
    }

    pub fn forget(&self, pod_uid: &str) {
        self.by_pod.lock().unwrap().remove(pod_uid);
    }

    /// Every assumed volume.
    pub fn all(&self) -> HashSet<String> {
        self.by_pod
            .lock()
            .unwrap()
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

/// The pod's claims, sorted by what they need.
pub struct Claims {
    /// Bound claims' volume names (None: the volume does not exist).
    bound: Vec<Option<Arc<PersistentVolume>>>,
    /// Unbound claims whose binding waits for this pod's node.
    delayed: Vec<Arc<PersistentVolumeClaim>>,
}

/// What binding the pod's claims on a node takes: volumes to claim, claims to provision.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// (claim, volume name).
    pub static_bindings: Vec<(Arc<PersistentVolumeClaim>, String)>,
    pub provision: Vec<Arc<PersistentVolumeClaim>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.static_bindings.is_empty() && self.provision.is_empty()
    }
}

fn pv_fits_node(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    let required = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref());
    required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| term_matches(t, node.labels(), &node.name))
    })
}

fn storage(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i64 {
    q.and_then(|q| Quantity::parse(&q.0))
        .map(|q| q.value())
        .unwrap_or(0)
}

/// Whether a free volume can satisfy the claim on this node.
fn pv_matches(
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
    node: &NodeInfo,
    assumed: &HashSet<String>,
) -> bool {
    let (Some(spec), Some(cs)) = (&pv.spec, &claim.spec) else {
        return false;
    };
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    if assumed.contains(name) {
        return false;
    }
    let free = match &spec.claim_ref {
        None => true,
        Some(r) => r.name == claim.metadata.name && r.namespace == claim.metadata.namespace,
    };
    let phase_ok = pv.metadata.deletion_timestamp.is_none()
        && !matches!(
            pv.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Released" | "Failed")
        );
    let class_ok = spec.storage_class_name.as_deref().unwrap_or_default()
        == cs.storage_class_name.as_deref().unwrap_or_default();
    let modes_ok = cs
        .access_modes
        .iter()
        .flatten()
        .all(|m| spec.access_modes.iter().flatten().any(|x| x == m));
    let mode = |m: Option<&String>| m.map(String::as_str).unwrap_or("Filesystem").to_string();
    let volume_mode_ok = mode(spec.volume_mode.as_ref()) == mode(cs.volume_mode.as_ref());
    let want = storage(
        cs.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage")),
    );
    let have = storage(spec.capacity.as_ref().and_then(|c| c.get("storage")));
    free && phase_ok
        && class_ok
        && modes_ok
        && volume_mode_ok
        && have >= want
        && pv_fits_node(pv, node)
}

/// The class's allowedTopologies admit the node.
fn topology_allows(vols: &Volumes, claim: &PersistentVolumeClaim, node: &NodeInfo) -> bool {
    let class = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default();
    let Some(sc) = vols.classes.get(class) else {
        return false;
    };
    let Some(terms) = sc.allowed_topologies.as_ref().filter(|t| !t.is_empty()) else {
        return true;
    };
    terms.iter().any(|t| {
        t.match_label_expressions.iter().flatten().all(|e| {
            node.labels()
                .get(&e.key)
                .is_some_and(|v| e.values.contains(v))
        })
    })
}

/// Whether the class's driver has room for the claim on the node (upstream
/// `hasEnoughCapacity`): only drivers whose CSIDriver sets `storageCapacity` are
/// checked, against the CSIStorageCapacity objects of the class whose node topology
/// selects the node (`maximumVolumeSize` when given, else `capacity`).
pub fn has_enough_capacity(
    vols: &Volumes,
    claim: &PersistentVolumeClaim,
    class: &k8s_openapi::api::storage::v1::StorageClass,
    node: &NodeInfo,
) -> bool {
    let Some(want) = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref()?.requests.as_ref()?.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
    else {
        return true;
    };
    let checks = vols
        .csi_drivers
        .get(&class.provisioner)
        .is_some_and(|d| d.spec.storage_capacity == Some(true));
    if !checks {
        return true;
    }
    let class_name = class.metadata.name.as_deref().unwrap_or_default();
    vols.capacities.values().any(|c| {
        let limit = c.maximum_volume_size.as_ref().or(c.capacity.as_ref());
        c.storage_class_name == class_name
            && limit
                .and_then(|l| Quantity::parse(&l.0))
                .is_some_and(|l| l >= want)
            && c.node_topology.as_ref().is_some_and(|t| {
                apimachinery::labels::Selector::from_label_selector(
                    serde_json::to_value(t).ok().as_ref(),
                )
                .is_ok_and(|sel| sel.matches(node.labels()))
            })
    })
}

/// The binding plan for `claims` on `node`, or why there is none.
pub fn plan(
    claims: &Claims,
    node: &NodeInfo,
    vols: &Volumes,
    assumed: &HashSet<String>,
) -> Result<Plan, Status> {
    for pv in &claims.bound {
        match pv {
            None => return Err(Status::unresolvable(ERR_PV_NOT_EXIST)),
            Some(pv) if !pv_fits_node(pv, node) => {
                return Err(Status::unresolvable(ERR_NODE_CONFLICT));
            }
            Some(_) => {}
        }
    }
    let mut plan = Plan::default();
    let mut taken = assumed.clone();
    for c in &claims.delayed {
        let found = vols
            .volumes
            .values()
            .find(|pv| pv_matches(pv, c, node, &taken));
        if let Some(pv) = found {
            let name = pv.metadata.name.clone().unwrap_or_default();
            taken.insert(name.clone());
            plan.static_bindings.push((c.clone(), name));
            continue;
        }
        let class = c
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or_default();
        let provisioner = vols
            .classes
            .get(class)
            .filter(|sc| sc.provisioner != NO_PROVISIONER);
        let Some(sc) = provisioner.filter(|_| topology_allows(vols, c, node)) else {
            return Err(Status::unresolvable(ERR_BIND_CONFLICT));
        };
        if !has_enough_capacity(vols, c, sc, node) {
            return Err(Status::unresolvable(ERR_NOT_ENOUGH_SPACE));
        }
        plan.provision.push(c.clone());
    }
    Ok(plan)
}

/// The pod's claims, or the PreFilter status that stops it.
pub fn claims(pod: &PodInfo, vols: &Volumes) -> Result<Option<Claims>, Status> {
    let names = claim_names(pod);
    if names.is_empty() {
        return Ok(None);
    }
    let mut out = Claims {
        bound: Vec::new(),
        delayed: Vec::new(),
    };
    for name in names {
        let Some(c) = vols.claims.get(&format!("{}/{name}", pod.namespace())) else {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim {name:?} not found"
            )));
        };
        if c.metadata.deletion_timestamp.is_some() {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim {name:?} is being deleted"
            )));
        }
        let spec = c.spec.as_ref();
        match spec
            .and_then(|s| s.volume_name.as_deref())
            .filter(|v| !v.is_empty())
        {
            Some(pv) => out.bound.push(vols.volumes.get(pv).cloned()),
            None => {
                let class = spec
                    .and_then(|s| s.storage_class_name.as_deref())
                    .unwrap_or_default();
                let delayed = vols.classes.get(class).is_some_and(|sc| {
                    sc.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
                });
                if !delayed {
                    return Err(Status::unresolvable(ERR_UNBOUND_IMMEDIATE));
                }
                out.delayed.push(c.clone());
            }
        }
    }
    Ok(Some(out))
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        super::super::names::VOLUME_BINDING
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        match claims(pod, snapshot.volumes) {
            Ok(None) => (None, Status::skip()),
            Ok(Some(c)) => {
                state.write(KEY, c);
                (None, Status::success())
            }
            Err(s) => (None, s),
        }
    }

    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let (Some(claims), Some(vols)) = (
            state.read::<Claims>(KEY),
            state.read::<VolumesRef>(VOLUMES_KEY),
        ) else {
            return Status::success();
        };
        match plan(claims, node, &vols.0, &vols.1) {
            Ok(_) => Status::success(),
            Err(s) => s,
        }
    }

    /// Chooses the volumes on the node and assumes them until the binding is done.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let (Some(claims), Some(vols)) = (
            state.read::<Claims>(KEY),
            state.read::<VolumesRef>(VOLUMES_KEY),
        ) else {
            return Status::success();
        };
        let chosen = match plan(claims, node, &vols.0, &vols.1) {
            Ok(p) => p,
            Err(s) => return s,
        };
        if !chosen.static_bindings.is_empty() {
            let volumes = chosen
                .static_bindings
                .iter()
                .map(|(_, pv)| pv.clone())
                .collect();
            self.assumed.assume(&pod.uid, volumes);
        }
        state.write(PLAN_KEY, chosen);
        Status::success()
    }

    fn unreserve(&self, _: &CycleState, pod: &PodInfo, _: &str) {
        self.assumed.forget(&pod.uid);
    }

    /// Claims the chosen volumes, asks for provisioning, and waits for the claims to
    /// be bound (`prebind::bind_volumes`).
    fn pre_bind<'a>(
        &'a self,
        ctx: &'a BindContext,
        state: &'a CycleState,
        _: &'a PodInfo,
        node: &'a str,
    ) -> BoxFuture<'a, Status> {
        Box::pin(async move {
            match state.read::<Plan>(PLAN_KEY).filter(|p| !p.is_empty()) {
                Some(plan) => {
                    match super::prebind::bind_volumes(&ctx.client, &ctx.limiter, plan, node).await
                    {
                        Ok(()) => Status::success(),
                        Err(e) => Status::error(e),
                    }
                }
                None => Status::success(),
            }
        })
    }

    fn post_bind(&self, _: &CycleState, pod: &PodInfo, _: &str) {
        self.assumed.forget(&pod.uid);
    }
}

/// The volume stores, shared into the cycle state for Filter (which sees no snapshot).
pub struct VolumesRef(pub Arc<Volumes>, pub HashSet<String>);
pub const VOLUMES_KEY: &str = "VolumeBindingVolumes";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn capacity_is_checked_for_drivers_that_publish_it() {
        let claim: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "c"},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "2Gi"}}}}))
            .unwrap();
        let class: k8s_openapi::api::storage::v1::StorageClass =
            serde_json::from_value(json!({"metadata": {"name": "fast"}, "provisioner": "d"}))
                .unwrap();
        let mut node = NodeInfo::default();
        node.set_node(from(
            json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}}),
        ));
        let mut vols = Volumes::default();
        // No CSIDriver, or one that does not publish capacity: nothing to check.
        assert!(has_enough_capacity(&vols, &claim, &class, &node));
        vols.csi_drivers.insert(
            "d".into(),
            from(json!({"metadata": {"name": "d"}, "spec": {"storageCapacity": true}})),
        );
        assert!(!has_enough_capacity(&vols, &claim, &class, &node));
        let capacity = |name: &str, zone: &str, cap: &str, max: Option<&str>| {
            from::<k8s_openapi::api::storage::v1::CSIStorageCapacity>(json!({
                "metadata": {"name": name, "namespace": "kube-system"}, "storageClassName": "fast",
                "nodeTopology": {"matchLabels": {"zone": zone}}, "capacity": cap, "maximumVolumeSize": max}))
        };
        vols.capacities
            .insert("a".into(), capacity("a", "b", "10Gi", None));
        assert!(
            !has_enough_capacity(&vols, &claim, &class, &node),
            "another zone's"
        );
        vols.capacities
            .insert("b".into(), capacity("b", "a", "10Gi", Some("1Gi")));
        assert!(
            !has_enough_capacity(&vols, &claim, &class, &node),
            "the maximum volume size counts"
        );
        vols.capacities
            .insert("c".into(), capacity("c", "a", "3Gi", None));
        assert!(has_enough_capacity(&vols, &claim, &class, &node));
    }
}
