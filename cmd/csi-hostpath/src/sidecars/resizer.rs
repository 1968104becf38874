//! The resizer role (kubernetes-csi/external-resizer): a claim the expansion controller
//! handed to this driver (`volume.kubernetes.io/storage-resizer`) whose volume is on
//! this node and smaller than asked is grown by `ControllerExpandVolume`; the
//! PersistentVolume takes the new size, and the claim either reports it or waits for
//! the kubelet to grow the filesystem (`allocatedResourceStatuses.storage:
//! NodeResizePending` and the `FileSystemResizePending` condition).

use super::{Context, capabilities, requested_bytes, run_loop, secret_of, volume_on_node};
use apimachinery::resource::Quantity;
use client_go::informer::Informer;
use csi::v1 as api;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimCondition,
};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const STORAGE_RESIZER: &str = "volume.kubernetes.io/storage-resizer";
const FS_RESIZE_MESSAGE: &str =
    "Waiting for user to (re-)start a pod to finish file system resize of volume on node.";

fn storage_bytes(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Option<i64> {
    Quantity::parse(&m?.get("storage")?.0).map(|q| q.value())
}

/// The size to grow the claim's volume to, if this node's resizer should.
pub fn resize_needed(
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    driver: &str,
    topology: &BTreeMap<String, String>,
) -> Option<i64> {
    let ours = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STORAGE_RESIZER))
        .is_some_and(|d| d == driver);
    let csi = pv.spec.as_ref()?.csi.as_ref()?;
    if !ours || csi.driver != driver || !volume_on_node(pv, topology) {
        return None;
    }
    let requested = requested_bytes(pvc)?;
    let volume = storage_bytes(pv.spec.as_ref()?.capacity.as_ref())?;
    (requested > volume).then_some(requested)
}

/// The claim's conditions with the resize ones replaced by `with`.
pub fn resize_conditions(
    current: &[PersistentVolumeClaimCondition],
    with: Option<PersistentVolumeClaimCondition>,
) -> Vec<PersistentVolumeClaimCondition> {
    let mut out: Vec<_> = current
        .iter()
        .filter(|c| {
            !matches!(
                c.type_.as_str(),
                "Resizing" | "FileSystemResizePending" | "ControllerResizeError"
            )
        })
        .cloned()
        .collect();
    out.extend(with);
    out
}

fn condition(type_: &str, message: &str) -> PersistentVolumeClaimCondition {
    PersistentVolumeClaimCondition {
        type_: type_.into(),
        status: "True".into(),
        last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        )),
        message: (!message.is_empty()).then(|| message.to_string()),
        ..Default::default()
    }
}

pub struct Resizer {
    ctx: Arc<Context>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
}

impl Resizer {
    pub fn start(ctx: Arc<Context>) {
        let claims = ctx.informers.get::<PersistentVolumeClaim>();
        let volumes = ctx.informers.get::<PersistentVolume>();
        let wake = Arc::new(tokio::sync::Notify::new());
        let w = wake.clone();
        claims.add_handler(move |_, _| w.notify_one());
        claims.run();
        volumes.run();
        let r = Arc::new(Resizer {
            ctx,
            claims,
            volumes,
        });
        tokio::spawn(async move {
            r.claims.synced().await;
            r.volumes.synced().await;
            tracing::info!(driver = r.ctx.driver, node = r.ctx.node, "resizer started");
            run_loop(wake, || r.pass()).await;
        });
    }

    async fn pass(&self) {
        for pvc in self.claims.store.state() {
            let Some(pv) = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .and_then(|v| self.volumes.store.get(v))
            else {
                continue;
            };
            if let Some(size) = resize_needed(&pvc, &pv, &self.ctx.driver, &self.ctx.topology)
                && let Err(e) = self.resize(&pvc, &pv, size).await
            {
                tracing::warn!(claim = ?pvc.metadata.name, error = e, "resize failed");
            }
        }
    }

    async fn patch_claim_status(
        &self,
        pvc: &PersistentVolumeClaim,
        status: serde_json::Value,
    ) -> Result<(), String> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.ctx.client.clone(),
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.patch_status(
            pvc.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("updating the claim's status: {e}"))
    }

    async fn resize(
        &self,
        pvc: &PersistentVolumeClaim,
        pv: &PersistentVolume,
        size: i64,
    ) -> Result<(), String> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let spec = pv.spec.clone().unwrap_or_default();
        let csi = spec.csi.clone().unwrap_or_default();
        let conditions = pvc
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let wanted = Quantity::binary(size).to_string();
        self.ctx.recorder.eventf(
            super::reference(pvc),
            "Normal",
            "Resizing",
            "Resize",
            format!("External resizer is resizing volume {pv_name}"),
        );
        self.patch_claim_status(
            pvc,
            json!({
                "allocatedResources": {"storage": wanted},
                "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                "conditions": resize_conditions(&conditions, Some(condition("Resizing", ""))),
            }),
        )
        .await?;
        let block = spec.volume_mode.as_deref() == Some("Block");
        let caps = capabilities(
            spec.access_modes.as_deref().unwrap_or_default(),
            block,
            csi.fs_type.as_deref().unwrap_or_default(),
        );
        let secrets = self
            .ctx
            .secrets(secret_of(csi.controller_expand_secret_ref.as_ref()))
            .await?;
        let result = self
            .ctx
            .controller()?
            .controller_expand_volume(api::ControllerExpandVolumeRequest {
                volume_id: csi.volume_handle.clone(),
                capacity_range: Some(api::CapacityRange {
                    required_bytes: size,
                    limit_bytes: 0,
                }),
                secrets: secrets.into_iter().collect(),
                volume_capability: caps.into_iter().next(),
            })
            .await;
        let resp = match result {
            Ok(r) => r.into_inner(),
            Err(e) => {
                let msg = format!(
                    "resize volume \"{pv_name}\" by resizer \"{}\" failed: rpc error: code = {:?} desc = {}",
                    self.ctx.driver,
                    e.code(),
                    e.message()
                );
                self.ctx.recorder.eventf(
                    super::reference(pvc),
                    "Warning",
                    "VolumeResizeFailed",
                    "Resize",
                    msg.clone(),
                );
                // Errors the driver will keep giving make the resize infeasible (the
                // user may lower the request again); others are retried.
                let infeasible = matches!(
                    e.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::OutOfRange
                        | tonic::Code::ResourceExhausted
                );
                let state = if infeasible {
                    "ControllerResizeInfeasible"
                } else {
                    "ControllerResizeInProgress"
                };
                self.patch_claim_status(
                    pvc,
                    json!({
                        "allocatedResourceStatuses": {"storage": state},
                        "conditions": resize_conditions(&conditions, Some(condition("ControllerResizeError", &msg))),
                    }),
                )
                .await?;
                return Err(msg);
            }
        };
        let new_size = resp.capacity_bytes.max(size);
        let pvs: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        pvs.patch(
            &pv_name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"capacity": {"storage": Quantity::binary(new_size).to_string()}}}),
            ),
        )
        .await
        .map_err(|e| format!("updating PersistentVolume {pv_name}: {e}"))?;
        if resp.node_expansion_required && !block {
            self.patch_claim_status(
                pvc,
                json!({
                    "allocatedResourceStatuses": {"storage": "NodeResizePending"},
                    "conditions": resize_conditions(&conditions, Some(condition("FileSystemResizePending", FS_RESIZE_MESSAGE))),
                }),
            )
            .await?;
            self.ctx.recorder.eventf(
                super::reference(pvc),
                "Normal",
                "FileSystemResizeRequired",
                "Resize",
                "Require file system resize of volume on node".into(),
            );
        } else {
            self.patch_claim_status(
                pvc,
                json!({
                    "capacity": {"storage": Quantity::binary(new_size).to_string()},
                    "allocatedResourceStatuses": {"storage": null},
                    "conditions": resize_conditions(&conditions, None),
                }),
            )
            .await?;
            self.ctx.recorder.eventf(
                super::reference(pvc),
                "Normal",
                "VolumeResizeSuccessful",
                "Resize",
                "Resize volume succeeded".into(),
            );
        }
        tracing::info!(volume = pv_name, size = new_size, "volume expanded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRIVER: &str = "hostpath.csi.k8s.io";

    fn claim(request: &str, resizer: Option<&str>) -> PersistentVolumeClaim {
        let mut c: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns"},
            "spec": {"volumeName": "pv", "resources": {"requests": {"storage": request}}},
        }))
        .unwrap();
        if let Some(r) = resizer {
            c.metadata.annotations = Some([(STORAGE_RESIZER.to_string(), r.to_string())].into());
        }
        c
    }

    fn volume(node: &str) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": "pv"}, "spec": {
            "capacity": {"storage": "1Gi"},
            "csi": {"driver": DRIVER, "volumeHandle": "h"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.hostpath.csi/node", "operator": "In", "values": [node]}]}]}},
        }}))
        .unwrap()
    }

    #[test]
    fn only_this_nodes_handed_over_claims_grow() {
        let here = BTreeMap::from([("topology.hostpath.csi/node".to_string(), "n1".to_string())]);
        assert_eq!(
            resize_needed(&claim("2Gi", Some(DRIVER)), &volume("n1"), DRIVER, &here),
            Some(2 << 30)
        );
        assert_eq!(
            resize_needed(&claim("2Gi", None), &volume("n1"), DRIVER, &here),
            None
        );
        assert_eq!(
            resize_needed(&claim("2Gi", Some(DRIVER)), &volume("n2"), DRIVER, &here),
            None
        );
        assert_eq!(
            resize_needed(&claim("1Gi", Some(DRIVER)), &volume("n1"), DRIVER, &here),
            None
        );
    }

    #[test]
    fn resize_conditions_replace_each_other() {
        let other = PersistentVolumeClaimCondition {
            type_: "ModifyingVolume".into(),
            status: "True".into(),
            ..Default::default()
        };
        let resizing = condition("Resizing", "");
        let now = resize_conditions(
            &[other.clone(), resizing],
            Some(condition("FileSystemResizePending", FS_RESIZE_MESSAGE)),
        );
        let types: Vec<_> = now.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["ModifyingVolume", "FileSystemResizePending"]);
        assert_eq!(resize_conditions(&now, None), [other]);
    }
}
