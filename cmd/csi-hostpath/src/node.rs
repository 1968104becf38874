//! The CSI Node service: staging attaches the volume's image to a loop device and mounts
//! its ext4 filesystem (formatted on first use) at the staging path; publishing
//! bind-mounts that into the pod (or the device itself, for block volumes); expansion
//! grows the device and the filesystem online. Every step is idempotent, as the kubelet
//! repeats them after a restart.

use crate::Driver;
use crate::disk;
use crate::state;
use csi::v1 as api;
use csi::v1::node_server::Node;
use std::path::Path;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct NodeService(pub Arc<Driver>);

type R<T> = Result<Response<T>, Status>;

fn required(value: &str, what: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{what} missing in request"
        )));
    }
    Ok(())
}

fn mount_flags(cap: Option<&api::VolumeCapability>) -> Vec<String> {
    match cap.and_then(|c| c.access_type.as_ref()) {
        Some(api::volume_capability::AccessType::Mount(m)) => m.mount_flags.clone(),
        _ => Vec::new(),
    }
}

impl NodeService {
    fn volume(&self, id: &str) -> Result<state::Volume, Status> {
        self.0.store.get(id).ok_or_else(|| {
            Status::not_found(format!("volume {id} not found on node {}", self.0.node_id))
        })
    }
}

impl NodeService {
    /// An inline volume: made (image, loop device, filesystem) on its first publish and
    /// mounted straight at the target, with no staging.
    fn publish_ephemeral(
        &self,
        req: &api::NodePublishVolumeRequest,
        cap: &api::VolumeCapability,
        target: &Path,
    ) -> R<api::NodePublishVolumeResponse> {
        let d = &self.0;
        let caps = std::slice::from_ref(cap);
        if state::is_block(caps) {
            return Err(Status::invalid_argument(
                "inline volumes are filesystems, not raw block devices",
            ));
        }
        let fs = state::fs_type(caps);
        let v = match d.store.get(&req.volume_id) {
            Some(v) => v,
            None => {
                let capacity = state::ephemeral_capacity(
                    req.volume_context
                        .get(state::SIZE_ATTRIBUTE)
                        .map(String::as_str),
                    fs,
                )?;
                let v = state::Volume {
                    id: req.volume_id.clone(),
                    name: req.volume_id.clone(),
                    capacity,
                    node: d.node_id.clone(),
                    block: false,
                    ephemeral: true,
                };
                d.store.put(&v)?;
                tracing::info!(volume = v.id, capacity, "inline volume created");
                v
            }
        };
        let image = disk::image_path(&d.statedir, &v.id);
        disk::ensure_image(&image, v.capacity)?;
        let dev = disk::loop_device(&image)?;
        disk::format_if_blank(&dev, fs)?;
        let mut flags = mount_flags(Some(cap));
        if req.readonly {
            flags.push("ro".into());
        }
        disk::mount_fs(&dev, fs, target, &flags)?;
        Ok(Response::new(api::NodePublishVolumeResponse {}))
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_stage_volume(
        &self,
        r: Request<api::NodeStageVolumeRequest>,
    ) -> R<api::NodeStageVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodeStageVolume", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.staging_target_path, "staging target path")?;
        let cap = req
            .volume_capability
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("volume capability missing in request"))?;
        if let Some(why) = state::unsupported(std::slice::from_ref(cap)) {
            return Err(Status::invalid_argument(why));
        }
        let _guard = d.lock.lock().await;
        let v = self.volume(&req.volume_id)?;
        let image = disk::image_path(&d.statedir, &v.id);
        disk::ensure_image(&image, v.capacity)?;
        let dev = disk::loop_device(&image)?;
        if !state::is_block(std::slice::from_ref(cap)) {
            let caps = std::slice::from_ref(cap);
            disk::format_if_blank(&dev, state::fs_type(caps))?;
            // Mount what the device holds: a volume keeps its first filesystem.
            let fs = disk::filesystem_of(&dev)?.unwrap_or_else(|| state::fs_type(caps).into());
            disk::mount_fs(
                &dev,
                &fs,
                Path::new(&req.staging_target_path),
                &mount_flags(Some(cap)),
            )?;
        }
        Ok(Response::new(api::NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        r: Request<api::NodeUnstageVolumeRequest>,
    ) -> R<api::NodeUnstageVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodeUnstageVolume", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.staging_target_path, "staging target path")?;
        let _guard = d.lock.lock().await;
        let staging = Path::new(&req.staging_target_path);
        if csi::mount::is_mounted(staging) {
            disk::unmount_and_remove(staging)?;
        }
        disk::detach(&disk::image_path(&d.statedir, &req.volume_id))?;
        Ok(Response::new(api::NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        r: Request<api::NodePublishVolumeRequest>,
    ) -> R<api::NodePublishVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodePublishVolume", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.target_path, "target path")?;
        let cap = req
            .volume_capability
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("volume capability missing in request"))?;
        let _guard = d.lock.lock().await;
        let target = Path::new(&req.target_path);
        if req
            .volume_context
            .get(state::EPHEMERAL_KEY)
            .map(String::as_str)
            == Some("true")
        {
            return self.publish_ephemeral(&req, cap, target);
        }
        let v = self.volume(&req.volume_id)?;
        if state::is_block(std::slice::from_ref(cap)) {
            let image = disk::image_path(&d.statedir, &v.id);
            let dev = disk::loop_device(&image)?;
            disk::bind(&dev, target, true, req.readonly)?;
        } else {
            required(&req.staging_target_path, "staging target path")?;
            let staging = Path::new(&req.staging_target_path);
            if !csi::mount::is_mounted(staging) {
                return Err(Status::failed_precondition(format!(
                    "volume {} is not staged at {}",
                    v.id, req.staging_target_path
                )));
            }
            disk::bind(&req.staging_target_path, target, false, req.readonly)?;
        }
        Ok(Response::new(api::NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<api::NodeUnpublishVolumeRequest>,
    ) -> R<api::NodeUnpublishVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodeUnpublishVolume", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.target_path, "target path")?;
        let _guard = d.lock.lock().await;
        disk::unmount_and_remove(Path::new(&req.target_path))?;
        // An inline volume lives as long as its one publish.
        if let Some(v) = d.store.get(&req.volume_id).filter(|v| v.ephemeral) {
            let image = disk::image_path(&d.statedir, &v.id);
            disk::detach(&image)?;
            let _ = std::fs::remove_file(&image);
            d.store.delete(&v.id)?;
            tracing::info!(volume = v.id, "inline volume deleted");
        }
        Ok(Response::new(api::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<api::NodeGetVolumeStatsRequest>,
    ) -> R<api::NodeGetVolumeStatsResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodeGetVolumeStats", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.volume_path, "volume path")?;
        let v = self.volume(&req.volume_id)?;
        let path = Path::new(&req.volume_path);
        if !path.exists() {
            return Err(Status::not_found(format!(
                "volume path {} does not exist",
                req.volume_path
            )));
        }
        use api::volume_usage::Unit;
        let usage = |unit: Unit, (total, available, used): (i64, i64, i64)| api::VolumeUsage {
            available,
            total,
            used,
            unit: unit as i32,
        };
        let mounted = csi::mount::is_mounted(path);
        let condition = api::VolumeCondition {
            abnormal: !mounted,
            message: if mounted {
                "volume is mounted".into()
            } else {
                format!("volume path {} is not mounted", req.volume_path)
            },
        };
        let stats = if v.block {
            // Stats only read: an unattached volume is reported, not attached.
            let dev =
                disk::attached_device(&disk::image_path(&d.statedir, &v.id))?.ok_or_else(|| {
                    Status::not_found(format!("volume {} is not staged on this node", v.id))
                })?;
            vec![usage(Unit::Bytes, (disk::device_size(&dev)?, 0, 0))]
        } else {
            let u = disk::usage(path)?;
            vec![usage(Unit::Bytes, u.bytes), usage(Unit::Inodes, u.inodes)]
        };
        Ok(Response::new(api::NodeGetVolumeStatsResponse {
            usage: stats,
            volume_condition: Some(condition),
        }))
    }

    async fn node_expand_volume(
        &self,
        r: Request<api::NodeExpandVolumeRequest>,
    ) -> R<api::NodeExpandVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("NodeExpandVolume", &req.volume_id);
        required(&req.volume_id, "volume ID")?;
        required(&req.volume_path, "volume path")?;
        let _guard = d.lock.lock().await;
        let mut v = self.volume(&req.volume_id)?;
        let wanted = state::capacity_for(req.capacity_range.as_ref(), 0)?;
        let image = disk::image_path(&d.statedir, &v.id);
        if wanted > v.capacity {
            disk::ensure_image(&image, wanted)?;
            v.capacity = wanted;
            d.store.put(&v)?;
        }
        let dev = disk::loop_device(&image)?;
        let mount_point = if req.staging_target_path.is_empty() {
            Path::new(&req.volume_path)
        } else {
            Path::new(&req.staging_target_path)
        };
        disk::grow(&dev, (!v.block).then_some(mount_point))?;
        tracing::info!(
            volume = v.id,
            capacity = v.capacity,
            "volume grown on the node"
        );
        Ok(Response::new(api::NodeExpandVolumeResponse {
            capacity_bytes: v.capacity,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<api::NodeGetCapabilitiesRequest>,
    ) -> R<api::NodeGetCapabilitiesResponse> {
        use api::node_service_capability::{Rpc, Type, rpc};
        self.0.log_call("NodeGetCapabilities", "");
        Ok(Response::new(api::NodeGetCapabilitiesResponse {
            capabilities: [
                rpc::Type::StageUnstageVolume,
                rpc::Type::GetVolumeStats,
                rpc::Type::ExpandVolume,
                rpc::Type::VolumeCondition,
                rpc::Type::SingleNodeMultiWriter,
            ]
            .into_iter()
            .map(|t| api::NodeServiceCapability {
                r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
            })
            .collect(),
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<api::NodeGetInfoRequest>,
    ) -> R<api::NodeGetInfoResponse> {
        self.0.log_call("NodeGetInfo", "");
        Ok(Response::new(api::NodeGetInfoResponse {
            node_id: self.0.node_id.clone(),
            max_volumes_per_node: self.0.max_volumes,
            accessible_topology: Some(state::topology(&self.0.node_id)),
        }))
    }
}
