//! The provisioner role (kubernetes-csi/external-provisioner with `--node-deployment`):
//! a claim of a class this driver provisions, placed on this node by the scheduler
//! (`volume.kubernetes.io/selected-node`), gets a volume (`CreateVolume` with this
//! node's topology) and a PersistentVolume bound to it, with the class's reclaim
//! policy, mount options and secrets; a claim of an `Immediate` class is taken by the
//! first node that marks it. A released volume of this node with reclaim policy Delete
//! is deleted (`DeleteVolume`), then its PersistentVolume.

use super::{Context, capabilities, reference, requested_bytes, run_loop, volume_on_node};
use apimachinery::resource::Quantity;
use client_go::informer::Informer;
use csi::v1 as api;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{StorageClass, VolumeAttachment};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const RESERVED_PREFIX: &str = "csi.storage.k8s.io/";
/// The volume context key naming the provisioner instance that made a volume.
pub const PROVISIONER_IDENTITY: &str = "storage.kubernetes.io/csiProvisionerIdentity";

/// What the provisioner does with a claim.
#[derive(Debug, PartialEq)]
pub enum ClaimAction {
    Skip,
    Provision,
    /// An `Immediate` claim no node took yet: take it for this node.
    Take,
}

fn annotation<'a>(
    m: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    k: &str,
) -> Option<&'a str> {
    m.annotations.as_ref()?.get(k).map(String::as_str)
}

/// Whether the class's allowed topologies admit this node.
fn class_allows(class: &StorageClass, topology: &BTreeMap<String, String>) -> bool {
    let terms = class.allowed_topologies.as_deref().unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_label_expressions.iter().flatten().all(|e| {
                topology
                    .get(&e.key)
                    .is_some_and(|v| e.values.iter().any(|x| x == v))
            })
        })
}

/// The pure decision for a claim (`volume_exists`: its PersistentVolume was made).
pub fn claim_action(
    pvc: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    driver: &str,
    node: &str,
    topology: &BTreeMap<String, String>,
    volume_exists: bool,
) -> ClaimAction {
    let m = &pvc.metadata;
    let bound = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty());
    let ours = annotation(m, STORAGE_PROVISIONER)
        .or_else(|| annotation(m, BETA_STORAGE_PROVISIONER))
        == Some(driver);
    if bound || !ours || m.deletion_timestamp.is_some() || volume_exists {
        return ClaimAction::Skip;
    }
    match annotation(m, SELECTED_NODE) {
        Some(n) if n == node => ClaimAction::Provision,
        Some(_) => ClaimAction::Skip,
        None => match class {
            Some(c)
                if c.volume_binding_mode.as_deref().unwrap_or("Immediate") == "Immediate"
                    && class_allows(c, topology) =>
            {
                ClaimAction::Take
            }
            _ => ClaimAction::Skip,
        },
    }
}

/// Whether a volume is this node's to delete: provisioned by the driver, released,
/// reclaim policy Delete, and on this node.
pub fn should_delete(
    pv: &PersistentVolume,
    driver: &str,
    topology: &BTreeMap<String, String>,
) -> bool {
    let Some(spec) = &pv.spec else { return false };
    // Once deleted, only while the provisioner's finalizer says the volume may remain.
    let deleted_done = pv.metadata.deletion_timestamp.is_some()
        && !pv
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER);
    !deleted_done
        && annotation(&pv.metadata, PROVISIONED_BY) == Some(driver)
        && spec.csi.as_ref().is_some_and(|c| c.driver == driver)
        && spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete")
        && pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
        && volume_on_node(pv, topology)
}

/// A StorageClass's parameters (or a part of them).
pub type Parameters = BTreeMap<String, String>;

/// A class's parameters split into the driver's own and the reserved ones
/// (`csi.storage.k8s.io/…`, prefix removed); an unknown reserved key is an error, as
/// upstream.
pub fn split_parameters(
    params: &BTreeMap<String, String>,
) -> Result<(Parameters, Parameters), String> {
    const KNOWN: [&str; 11] = [
        "fstype",
        "provisioner-secret-name",
        "provisioner-secret-namespace",
        "controller-publish-secret-name",
        "controller-publish-secret-namespace",
        "node-stage-secret-name",
        "node-stage-secret-namespace",
        "node-publish-secret-name",
        "node-publish-secret-namespace",
        "controller-expand-secret-name",
        "controller-expand-secret-namespace",
    ];
    const MORE: [&str; 2] = ["node-expand-secret-name", "node-expand-secret-namespace"];
    let mut driver = BTreeMap::new();
    let mut reserved = BTreeMap::new();
    for (k, v) in params {
        match k.strip_prefix(RESERVED_PREFIX) {
            Some(r) if KNOWN.contains(&r) || MORE.contains(&r) => {
                reserved.insert(r.to_string(), v.clone());
            }
            Some(_) => {
                return Err(format!(
                    "found unknown parameter key \"{k}\" with reserved namespace {RESERVED_PREFIX}"
                ));
            }
            None => {
                driver.insert(k.clone(), v.clone());
            }
        }
    }
    Ok((driver, reserved))
}

/// A secret reference of the class (`<kind>-secret-name` / `-namespace`), its templates
/// resolved (`${pvc.name}`, `${pvc.namespace}`, `${pv.name}`).
pub fn secret_ref(
    reserved: &BTreeMap<String, String>,
    kind: &str,
    pvc: &PersistentVolumeClaim,
    pv_name: &str,
) -> Option<(String, String)> {
    let resolve = |s: &str| {
        s.replace(
            "${pvc.name}",
            pvc.metadata.name.as_deref().unwrap_or_default(),
        )
        .replace(
            "${pvc.namespace}",
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
        )
        .replace("${pv.name}", pv_name)
    };
    let name = reserved.get(&format!("{kind}-secret-name"))?;
    let ns = reserved
        .get(&format!("{kind}-secret-namespace"))
        .cloned()
        .unwrap_or_default();
    Some((resolve(&ns), resolve(name)))
}

/// The PersistentVolume for a volume the driver created for `pvc`.
#[allow(clippy::too_many_arguments)]
pub fn persistent_volume(
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    driver: &str,
    identity: &str,
    pv_name: &str,
    fs_type: &str,
    reserved: &BTreeMap<String, String>,
    volume: &api::Volume,
) -> PersistentVolume {
    let spec = pvc.spec.clone().unwrap_or_default();
    let block = spec.volume_mode.as_deref() == Some("Block");
    let reclaim = class
        .reclaim_policy
        .clone()
        .unwrap_or_else(|| "Delete".into());
    let mut attributes: BTreeMap<String, String> =
        volume.volume_context.clone().into_iter().collect();
    attributes.insert(PROVISIONER_IDENTITY.into(), identity.into());
    let secret = |kind: &str| {
        secret_ref(reserved, kind, pvc, pv_name)
            .map(|(ns, name)| json!({"name": name, "namespace": ns}))
    };
    let terms: Vec<_> = volume
        .accessible_topology
        .iter()
        .map(|t| {
            let exprs: Vec<_> = t
                .segments
                .iter()
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| json!({"key": k, "operator": "In", "values": [v]}))
                .collect();
            json!({"matchExpressions": exprs})
        })
        .collect();
    let mut csi = json!({
        "driver": driver,
        "volumeHandle": volume.volume_id,
        "volumeAttributes": attributes,
    });
    if !block {
        csi["fsType"] = json!(fs_type);
    }
    for (field, kind) in [
        ("controllerPublishSecretRef", "controller-publish"),
        ("nodeStageSecretRef", "node-stage"),
        ("nodePublishSecretRef", "node-publish"),
        ("controllerExpandSecretRef", "controller-expand"),
        ("nodeExpandSecretRef", "node-expand"),
    ] {
        if let Some(r) = secret(kind) {
            csi[field] = r;
        }
    }
    let mut pv = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "annotations": {PROVISIONED_BY: driver},
        },
        "spec": {
            "accessModes": spec.access_modes.clone().unwrap_or_default(),
            "capacity": {"storage": Quantity::binary(volume.capacity_bytes).to_string()},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": pvc.metadata.namespace,
                "name": pvc.metadata.name,
                "uid": pvc.metadata.uid,
                "resourceVersion": pvc.metadata.resource_version,
            },
            "persistentVolumeReclaimPolicy": reclaim,
            "storageClassName": class.metadata.name,
            "volumeMode": if block { "Block" } else { "Filesystem" },
            "csi": csi,
        },
    });
    if reclaim == "Delete" {
        pv["metadata"]["finalizers"] = json!([FINALIZER]);
    }
    if let Some(opts) = &class.mount_options {
        pv["spec"]["mountOptions"] = json!(opts);
    }
    if !terms.is_empty() {
        pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": terms}});
    }
    if let Some((ns, name)) = secret_ref(reserved, "provisioner", pvc, pv_name) {
        let a = &mut pv["metadata"]["annotations"];
        a["volume.kubernetes.io/provisioner-deletion-secret-name"] = json!(name);
        a["volume.kubernetes.io/provisioner-deletion-secret-namespace"] = json!(ns);
    }
    serde_json::from_value(pv).unwrap_or_default()
}

pub struct Provisioner {
    ctx: Arc<Context>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
    classes: Arc<Informer<StorageClass>>,
    attachments: Arc<Informer<VolumeAttachment>>,
    default_fstype: String,
    extra_create_metadata: bool,
    identity: String,
}

impl Provisioner {
    pub fn start(ctx: Arc<Context>, default_fstype: String, extra_create_metadata: bool) {
        let claims = ctx.informers.get::<PersistentVolumeClaim>();
        let volumes = ctx.informers.get::<PersistentVolume>();
        let classes = ctx.informers.get::<StorageClass>();
        let attachments = ctx.informers.get::<VolumeAttachment>();
        let wake = Arc::new(tokio::sync::Notify::new());
        let w = wake.clone();
        claims.add_handler(move |_, _| w.notify_one());
        let w = wake.clone();
        volumes.add_handler(move |_, _| w.notify_one());
        let w = wake.clone();
        attachments.add_handler(move |_, _| w.notify_one());
        attachments.run();
        claims.run();
        volumes.run();
        classes.run();
        let identity = format!(
            "{}-{}-{}",
            jiff::Timestamp::now().as_millisecond(),
            std::process::id(),
            ctx.driver
        );
        let p = Arc::new(Provisioner {
            ctx,
            claims,
            volumes,
            classes,
            attachments,
            default_fstype,
            extra_create_metadata,
            identity,
        });
        tokio::spawn(async move {
            p.claims.synced().await;
            p.volumes.synced().await;
            p.classes.synced().await;
            p.attachments.synced().await;
            tracing::info!(
                driver = p.ctx.driver,
                node = p.ctx.node,
                "provisioner started"
            );
            run_loop(wake, || p.pass()).await;
        });
    }

    async fn pass(&self) {
        for pvc in self.claims.store.state() {
            let class = pvc
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
                .and_then(|c| self.classes.store.get(c));
            let pv_name = format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default());
            let exists = self.volumes.store.get(&pv_name).is_some();
            let action = claim_action(
                &pvc,
                class.as_deref(),
                &self.ctx.driver,
                &self.ctx.node,
                &self.ctx.topology,
                exists,
            );
            let result = match (action, class) {
                (ClaimAction::Skip, _) => Ok(()),
                (ClaimAction::Take, _) => self.take(&pvc).await,
                (ClaimAction::Provision, Some(class)) => {
                    self.provision(&pvc, &class, &pv_name).await
                }
                (ClaimAction::Provision, None) => Err(format!(
                    "storageclass.storage.k8s.io \"{}\" not found",
                    pvc.spec
                        .as_ref()
                        .and_then(|s| s.storage_class_name.clone())
                        .unwrap_or_default()
                )),
            };
            if let Err(e) = result {
                tracing::warn!(claim = ?pvc.metadata.name, error = e, "provisioning failed");
                self.ctx.recorder.eventf(
                    reference(pvc.as_ref()),
                    "Warning",
                    "ProvisioningFailed",
                    "Provision",
                    e,
                );
            }
        }
        for pv in self.volumes.store.state() {
            if !should_delete(&pv, &self.ctx.driver, &self.ctx.topology) {
                continue;
            }
            // A volume still attached somewhere is deleted once detached, as upstream.
            let name = pv.metadata.name.as_deref();
            if let Some(va) = self
                .attachments
                .store
                .state()
                .into_iter()
                .find(|va| va.spec.source.persistent_volume_name.as_deref() == name)
            {
                tracing::info!(
                    volume = name,
                    node = va.spec.node_name,
                    "persistentvolume is still attached; deletion waits"
                );
                continue;
            }
            if let Err(e) = self.delete(&pv).await {
                tracing::warn!(volume = ?pv.metadata.name, error = e, "deleting failed");
                self.ctx.recorder.eventf(
                    reference(pv.as_ref()),
                    "Warning",
                    "VolumeFailedDelete",
                    "Delete",
                    e,
                );
            }
        }
    }

    /// Marks an `Immediate` claim as this node's; a conflict means another node was
    /// first.
    async fn take(&self, pvc: &PersistentVolumeClaim) -> Result<(), String> {
        let mut next = pvc.clone();
        next.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(SELECTED_NODE.into(), self.ctx.node.clone());
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.ctx.client.clone(),
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
        );
        match api
            .replace(
                pvc.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                &next,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn provision(
        &self,
        pvc: &PersistentVolumeClaim,
        class: &StorageClass,
        pv_name: &str,
    ) -> Result<(), String> {
        let ns = pvc.metadata.namespace.clone().unwrap_or_default();
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let class_name = class.metadata.name.clone().unwrap_or_default();
        let fail = |e: String| {
            format!("failed to provision volume with StorageClass \"{class_name}\": {e}")
        };
        self.ctx.recorder.eventf(
            reference(pvc),
            "Normal",
            "Provisioning",
            "Provision",
            format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
        );
        let (mut params, reserved) =
            split_parameters(&class.parameters.clone().unwrap_or_default()).map_err(fail)?;
        let spec = pvc.spec.clone().unwrap_or_default();
        let block = spec.volume_mode.as_deref() == Some("Block");
        let fs_type = reserved
            .get("fstype")
            .or_else(|| params.get("fstype"))
            .cloned()
            .unwrap_or_else(|| self.default_fstype.clone());
        params.remove("fstype");
        if self.extra_create_metadata {
            params.insert("csi.storage.k8s.io/pvc/name".into(), name.clone());
            params.insert("csi.storage.k8s.io/pvc/namespace".into(), ns.clone());
            params.insert("csi.storage.k8s.io/pv/name".into(), pv_name.into());
        }
        let secrets = self
            .ctx
            .secrets(secret_ref(&reserved, "provisioner", pvc, pv_name))
            .await
            .map_err(fail)?;
        let here = api::Topology {
            segments: self.ctx.topology.clone().into_iter().collect(),
        };
        let request = api::CreateVolumeRequest {
            name: pv_name.into(),
            capacity_range: Some(api::CapacityRange {
                required_bytes: requested_bytes(pvc).unwrap_or(0),
                limit_bytes: 0,
            }),
            volume_capabilities: capabilities(
                spec.access_modes.as_deref().unwrap_or_default(),
                block,
                &fs_type,
            ),
            parameters: params.into_iter().collect(),
            secrets: secrets.into_iter().collect(),
            volume_content_source: None,
            accessibility_requirements: (!self.ctx.topology.is_empty()).then(|| {
                api::TopologyRequirement {
                    requisite: vec![here.clone()],
                    preferred: vec![here],
                }
            }),
            mutable_parameters: Default::default(),
        };
        let volume = self
            .ctx
            .controller()?
            .create_volume(request)
            .await
            .map_err(|e| {
                fail(format!(
                    "rpc error: code = {:?} desc = {}",
                    e.code(),
                    e.message()
                ))
            })?
            .into_inner()
            .volume
            .ok_or_else(|| fail("the driver returned no volume".into()))?;
        let pv = persistent_volume(
            pvc,
            class,
            &self.ctx.driver,
            &self.identity,
            pv_name,
            &fs_type,
            &reserved,
            &volume,
        );
        let api: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(fail(format!("error saving PersistentVolume: {e}"))),
        }
        tracing::info!(
            claim = format!("{ns}/{name}"),
            volume = pv_name,
            "provisioned"
        );
        self.ctx.recorder.eventf(
            reference(pvc),
            "Normal",
            "ProvisioningSucceeded",
            "Provision",
            format!("Successfully provisioned volume {pv_name}"),
        );
        Ok(())
    }

    async fn delete(&self, pv: &PersistentVolume) -> Result<(), String> {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let Some(csi) = pv.spec.as_ref().and_then(|s| s.csi.as_ref()) else {
            return Ok(());
        };
        let annotations = pv.metadata.annotations.clone().unwrap_or_default();
        let secret = annotations
            .get("volume.kubernetes.io/provisioner-deletion-secret-name")
            .map(|n| {
                (
                    annotations
                        .get("volume.kubernetes.io/provisioner-deletion-secret-namespace")
                        .cloned()
                        .unwrap_or_default(),
                    n.clone(),
                )
            });
        let secrets = self.ctx.secrets(secret).await?;
        self.ctx
            .controller()?
            .delete_volume(api::DeleteVolumeRequest {
                volume_id: csi.volume_handle.clone(),
                secrets: secrets.into_iter().collect(),
            })
            .await
            .map_err(|e| format!("rpc error: code = {:?} desc = {}", e.code(), e.message()))?;
        let api: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(format!("error deleting PersistentVolume: {e}")),
        }
        // The finalizer goes last: the volume is gone from the driver by now.
        super::set_finalizer(&api, &name, FINALIZER, false).await?;
        tracing::info!(volume = name, "volume deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRIVER: &str = "hostpath.csi.k8s.io";

    fn claim(annotations: serde_json::Value, volume_name: Option<&str>) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1", "annotations": annotations},
            "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"], "volumeName": volume_name,
                "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .unwrap()
    }

    fn class(mode: &str) -> StorageClass {
        serde_json::from_value(
            json!({"metadata": {"name": "standard"}, "provisioner": DRIVER,
            "volumeBindingMode": mode, "reclaimPolicy": "Delete", "mountOptions": ["noatime"]}),
        )
        .unwrap()
    }

    fn here() -> BTreeMap<String, String> {
        BTreeMap::from([("topology.hostpath.csi/node".into(), "n1".into())])
    }

    #[test]
    fn claims_are_provisioned_on_the_node_the_scheduler_chose() {
        let wffc = class("WaitForFirstConsumer");
        let act = |pvc: &PersistentVolumeClaim, c: &StorageClass, exists| {
            claim_action(pvc, Some(c), DRIVER, "n1", &here(), exists)
        };
        let mine = claim(
            json!({STORAGE_PROVISIONER: DRIVER, SELECTED_NODE: "n1"}),
            None,
        );
        assert_eq!(act(&mine, &wffc, false), ClaimAction::Provision);
        assert_eq!(act(&mine, &wffc, true), ClaimAction::Skip);
        let other = claim(
            json!({STORAGE_PROVISIONER: DRIVER, SELECTED_NODE: "n2"}),
            None,
        );
        assert_eq!(act(&other, &wffc, false), ClaimAction::Skip);
        let waiting = claim(json!({STORAGE_PROVISIONER: DRIVER}), None);
        assert_eq!(act(&waiting, &wffc, false), ClaimAction::Skip);
        assert_eq!(act(&waiting, &class("Immediate"), false), ClaimAction::Take);
        let foreign = claim(
            json!({STORAGE_PROVISIONER: "other", SELECTED_NODE: "n1"}),
            None,
        );
        assert_eq!(act(&foreign, &wffc, false), ClaimAction::Skip);
        let bound = claim(
            json!({STORAGE_PROVISIONER: DRIVER, SELECTED_NODE: "n1"}),
            Some("pv"),
        );
        assert_eq!(act(&bound, &wffc, false), ClaimAction::Skip);
        let beta = claim(
            json!({BETA_STORAGE_PROVISIONER: DRIVER, SELECTED_NODE: "n1"}),
            None,
        );
        assert_eq!(act(&beta, &wffc, false), ClaimAction::Provision);
    }

    #[test]
    fn reserved_parameters_are_split_and_unknown_ones_refused() {
        let params = BTreeMap::from([
            ("csi.storage.k8s.io/fstype".to_string(), "xfs".to_string()),
            ("size".to_string(), "x".to_string()),
        ]);
        let (driver, reserved) = split_parameters(&params).unwrap();
        assert_eq!(driver.keys().collect::<Vec<_>>(), ["size"]);
        assert_eq!(reserved["fstype"], "xfs");
        let bad = BTreeMap::from([("csi.storage.k8s.io/bogus".to_string(), "1".to_string())]);
        assert!(
            split_parameters(&bad)
                .unwrap_err()
                .contains("csi.storage.k8s.io/bogus")
        );
    }

    #[test]
    fn the_volume_is_bound_to_its_claim_on_this_node() {
        let pvc = claim(
            json!({STORAGE_PROVISIONER: DRIVER, SELECTED_NODE: "n1"}),
            None,
        );
        let reserved = BTreeMap::from([
            (
                "node-stage-secret-name".to_string(),
                "${pvc.name}-key".to_string(),
            ),
            (
                "node-stage-secret-namespace".to_string(),
                "${pvc.namespace}".to_string(),
            ),
        ]);
        let volume = api::Volume {
            capacity_bytes: 1 << 30,
            volume_id: "vol-1".into(),
            accessible_topology: vec![api::Topology {
                segments: here().into_iter().collect(),
            }],
            ..Default::default()
        };
        let pv = persistent_volume(
            &pvc,
            &class("WaitForFirstConsumer"),
            DRIVER,
            "id",
            "pvc-u1",
            "xfs",
            &reserved,
            &volume,
        );
        let v = serde_json::to_value(&pv).unwrap();
        assert_eq!(v["metadata"]["annotations"][PROVISIONED_BY], DRIVER);
        assert_eq!(v["metadata"]["finalizers"], json!([FINALIZER]));
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["claimRef"]["name"], "data");
        assert_eq!(v["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(v["spec"]["mountOptions"], json!(["noatime"]));
        assert_eq!(v["spec"]["csi"]["fsType"], "xfs");
        assert_eq!(v["spec"]["csi"]["volumeHandle"], "vol-1");
        assert_eq!(
            v["spec"]["csi"]["nodeStageSecretRef"],
            json!({"name": "data-key", "namespace": "ns"})
        );
        assert_eq!(
            v["spec"]["csi"]["volumeAttributes"][PROVISIONER_IDENTITY],
            "id"
        );
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
            json!({"key": "topology.hostpath.csi/node", "operator": "In", "values": ["n1"]})
        );
        assert!(volume_on_node(&pv, &here()));
        let mut released = pv.clone();
        released.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some("Released".into()),
            ..Default::default()
        });
        assert!(should_delete(&released, DRIVER, &here()));
        assert!(!should_delete(&pv, DRIVER, &here()));
        let there = BTreeMap::from([("topology.hostpath.csi/node".to_string(), "n2".to_string())]);
        assert!(!should_delete(&released, DRIVER, &there));
    }
}
