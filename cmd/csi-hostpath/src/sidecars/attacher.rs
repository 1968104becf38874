//! The attacher role (kubernetes-csi/external-attacher), for this node's attachments: a
//! VolumeAttachment naming this driver and node is attached with
//! `ControllerPublishVolume` (its status then says `attached` and carries the publish
//! context the kubelet passes on), guarded by the `external-attacher/<driver>`
//! finalizer on the attachment and its PersistentVolume; a deleted attachment is
//! detached with `ControllerUnpublishVolume` before the finalizer goes. A driver that
//! does not publish volumes gets its attachments marked attached, as upstream's
//! trivial attacher does.

use super::{Context, capabilities, run_loop, secret_of, set_finalizer, volume_on_node};
use client_go::informer::Informer;
use csi::v1 as api;
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;

/// The finalizer the attacher puts on attachments and volumes
/// (`external-attacher/` and the driver name with other characters than letters,
/// digits and `-` replaced by `-`).
pub fn finalizer(driver: &str) -> String {
    let clean: String = driver
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("external-attacher/{clean}")
}

/// What the attacher does with an attachment.
#[derive(Debug, PartialEq)]
pub enum AttachAction {
    Skip,
    Attach,
    Detach,
}

pub fn action(va: &VolumeAttachment, driver: &str, node: &str) -> AttachAction {
    if va.spec.attacher != driver || va.spec.node_name != node {
        return AttachAction::Skip;
    }
    let fin = finalizer(driver);
    let has_finalizer = va.metadata.finalizers.iter().flatten().any(|f| *f == fin);
    if va.metadata.deletion_timestamp.is_some() {
        return if has_finalizer {
            AttachAction::Detach
        } else {
            AttachAction::Skip
        };
    }
    let attached = va.status.as_ref().is_some_and(|s| s.attached);
    if attached && has_finalizer {
        AttachAction::Skip
    } else {
        AttachAction::Attach
    }
}

pub struct Attacher {
    ctx: Arc<Context>,
    attachments: Arc<Informer<VolumeAttachment>>,
    volumes: Arc<Informer<PersistentVolume>>,
}

/// A VolumeAttachment's `attachError` / `detachError`.
fn volume_error(msg: &str) -> serde_json::Value {
    json!({"time": jiff::Timestamp::now().to_string(), "message": msg})
}

fn rpc_error(e: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", e.code(), e.message())
}

impl Attacher {
    pub fn start(ctx: Arc<Context>) {
        let attachments = ctx.informers.get::<VolumeAttachment>();
        let wake = Arc::new(tokio::sync::Notify::new());
        let w = wake.clone();
        attachments.add_handler(move |_, _| w.notify_one());
        attachments.run();
        let volumes = ctx.informers.get::<PersistentVolume>();
        volumes.run();
        let a = Arc::new(Attacher {
            ctx,
            attachments,
            volumes,
        });
        tokio::spawn(async move {
            a.attachments.synced().await;
            a.volumes.synced().await;
            tracing::info!(driver = a.ctx.driver, node = a.ctx.node, "attacher started");
            run_loop(wake, || a.pass()).await;
        });
    }

    async fn pass(&self) {
        // Volumes of this node no attachment names any more lose the finalizer.
        let fin = finalizer(&self.ctx.driver);
        let attached: std::collections::BTreeSet<String> = self
            .attachments
            .store
            .state()
            .iter()
            .filter_map(|va| va.spec.source.persistent_volume_name.clone())
            .collect();
        let pvs: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        for pv in self.volumes.store.state() {
            let name = pv.metadata.name.clone().unwrap_or_default();
            if pv.metadata.finalizers.iter().flatten().any(|f| *f == fin)
                && !attached.contains(&name)
                && volume_on_node(&pv, &self.ctx.topology)
                && let Err(e) = set_finalizer(&pvs, &name, &fin, false).await
            {
                tracing::warn!(
                    volume = name,
                    error = e,
                    "removing the attacher's finalizer"
                );
            }
        }
        for va in self.attachments.store.state() {
            let result = match action(&va, &self.ctx.driver, &self.ctx.node) {
                AttachAction::Skip => Ok(()),
                AttachAction::Attach => self.attach(&va).await,
                AttachAction::Detach => self.detach(&va).await,
            };
            if let Err(e) = result {
                tracing::warn!(attachment = ?va.metadata.name, error = e, "attachment failed");
            }
        }
    }

    async fn patch_status(
        &self,
        va: &VolumeAttachment,
        status: serde_json::Value,
    ) -> Result<(), kube::Error> {
        let vas: Api<VolumeAttachment> = Api::all(self.ctx.client.clone());
        vas.patch_status(
            va.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map(|_| ())
    }

    async fn publishes(&self) -> Result<bool, String> {
        use api::controller_service_capability::{Type, rpc};
        let caps = self
            .ctx
            .controller()?
            .controller_get_capabilities(api::ControllerGetCapabilitiesRequest {})
            .await
            .map_err(|e| rpc_error(&e))?
            .into_inner();
        Ok(caps.capabilities.iter().any(|c| {
            matches!(&c.r#type, Some(Type::Rpc(r)) if r.r#type == rpc::Type::PublishUnpublishVolume as i32)
        }))
    }

    async fn attach(&self, va: &VolumeAttachment) -> Result<(), String> {
        let vas: Api<VolumeAttachment> = Api::all(self.ctx.client.clone());
        let pvs: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        let pv_name = va
            .spec
            .source
            .persistent_volume_name
            .clone()
            .ok_or("only attachments of persistent volumes are supported")?;
        let pv = pvs.get(&pv_name).await.map_err(|e| e.to_string())?;
        let fin = finalizer(&self.ctx.driver);
        set_finalizer(&pvs, &pv_name, &fin, true).await?;
        set_finalizer(
            &vas,
            va.metadata.name.as_deref().unwrap_or_default(),
            &fin,
            true,
        )
        .await?;
        let spec = pv.spec.clone().unwrap_or_default();
        let csi = spec.csi.clone().unwrap_or_default();
        let mut metadata = std::collections::BTreeMap::new();
        if self.publishes().await? {
            let block = spec.volume_mode.as_deref() == Some("Block");
            let secrets = self
                .ctx
                .secrets(secret_of(csi.controller_publish_secret_ref.as_ref()))
                .await?;
            let result = self
                .ctx
                .controller()?
                .controller_publish_volume(api::ControllerPublishVolumeRequest {
                    volume_id: csi.volume_handle.clone(),
                    node_id: self.ctx.node_id.clone(),
                    volume_capability: capabilities(
                        spec.access_modes.as_deref().unwrap_or_default(),
                        block,
                        csi.fs_type.as_deref().unwrap_or_default(),
                    )
                    .into_iter()
                    .next(),
                    readonly: csi.read_only.unwrap_or(false),
                    secrets: secrets.into_iter().collect(),
                    volume_context: csi
                        .volume_attributes
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                })
                .await;
            match result {
                Ok(r) => metadata = r.into_inner().publish_context.into_iter().collect(),
                Err(e) => {
                    let msg = rpc_error(&e);
                    let _ = self
                        .patch_status(
                            va,
                            json!({"attached": false, "attachError": volume_error(&msg)}),
                        )
                        .await;
                    return Err(msg);
                }
            }
        }
        self.patch_status(
            va,
            json!({"attached": true, "attachmentMetadata": metadata, "attachError": null}),
        )
        .await
        .map_err(|e| format!("marking attached: {e}"))?;
        tracing::info!(volume = pv_name, node = va.spec.node_name, "attached");
        Ok(())
    }

    async fn detach(&self, va: &VolumeAttachment) -> Result<(), String> {
        let vas: Api<VolumeAttachment> = Api::all(self.ctx.client.clone());
        let pvs: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        let pv_name = va
            .spec
            .source
            .persistent_volume_name
            .clone()
            .unwrap_or_default();
        let pv = pvs.get_opt(&pv_name).await.map_err(|e| e.to_string())?;
        if self.publishes().await? {
            let csi = pv
                .as_ref()
                .and_then(|p| p.spec.as_ref()?.csi.clone())
                .unwrap_or_default();
            let secrets = self
                .ctx
                .secrets(secret_of(csi.controller_publish_secret_ref.as_ref()))
                .await?;
            if let Err(e) = self
                .ctx
                .controller()?
                .controller_unpublish_volume(api::ControllerUnpublishVolumeRequest {
                    volume_id: csi.volume_handle,
                    node_id: self.ctx.node_id.clone(),
                    secrets: secrets.into_iter().collect(),
                })
                .await
            {
                let msg = rpc_error(&e);
                let _ = self
                    .patch_status(va, json!({"detachError": volume_error(&msg)}))
                    .await;
                return Err(msg);
            }
        }
        let fin = finalizer(&self.ctx.driver);
        set_finalizer(
            &vas,
            va.metadata.name.as_deref().unwrap_or_default(),
            &fin,
            false,
        )
        .await?;
        // The volume's finalizer goes with its last attachment (here, or in a later
        // pass's sweep when this one fails).
        let others = self.attachments.store.state().iter().any(|o| {
            o.metadata.name != va.metadata.name
                && o.spec.source.persistent_volume_name.as_deref() == Some(pv_name.as_str())
        });
        if pv.is_some() && !others {
            set_finalizer(&pvs, &pv_name, &fin, false).await?;
        }
        tracing::info!(volume = pv_name, node = va.spec.node_name, "detached");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn va(attached: bool, finalized: bool, deleted: bool) -> VolumeAttachment {
        let mut v: VolumeAttachment = serde_json::from_value(json!({
            "metadata": {"name": "csi-1"},
            "spec": {"attacher": "hostpath.csi.k8s.io", "nodeName": "n1", "source": {"persistentVolumeName": "pv"}},
            "status": {"attached": attached},
        }))
        .unwrap();
        if finalized {
            v.metadata.finalizers = Some(vec![finalizer("hostpath.csi.k8s.io")]);
        }
        if deleted {
            v.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            );
        }
        v
    }

    #[test]
    fn attachments_are_attached_and_detached_once() {
        assert_eq!(
            finalizer("hostpath.csi.k8s.io"),
            "external-attacher/hostpath-csi-k8s-io"
        );
        let d = "hostpath.csi.k8s.io";
        assert_eq!(
            action(&va(false, false, false), d, "n1"),
            AttachAction::Attach
        );
        assert_eq!(action(&va(true, true, false), d, "n1"), AttachAction::Skip);
        assert_eq!(action(&va(true, true, true), d, "n1"), AttachAction::Detach);
        assert_eq!(action(&va(true, false, true), d, "n1"), AttachAction::Skip);
        assert_eq!(
            action(&va(false, false, false), d, "n2"),
            AttachAction::Skip
        );
        assert_eq!(
            action(&va(false, false, false), "other", "n1"),
            AttachAction::Skip
        );
    }
}
