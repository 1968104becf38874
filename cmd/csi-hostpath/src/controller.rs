//! The CSI Controller service. Volumes are node-local: an instance provisions on its own
//! node (the external provisioner's distributed mode, `--node-deployment`), so
//! CreateVolume records the volume and makes its sparse image here, and expansion grows
//! the image and leaves the filesystem to NodeExpandVolume.

use crate::Driver;
use crate::disk;
use crate::state::{self, Volume};
use csi::v1 as api;
use csi::v1::controller_server::Controller;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ControllerService(pub Arc<Driver>);

type R<T> = Result<Response<T>, Status>;

fn volume_of(v: &Volume) -> api::Volume {
    api::Volume {
        capacity_bytes: v.capacity,
        volume_id: v.id.clone(),
        volume_context: Default::default(),
        content_source: None,
        accessible_topology: vec![state::topology(&v.node)],
    }
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        r: Request<api::CreateVolumeRequest>,
    ) -> R<api::CreateVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("CreateVolume", &req.name);
        let id = state::volume_id(&req.name)?;
        if let Some(why) = state::unsupported(&req.volume_capabilities) {
            return Err(Status::invalid_argument(why));
        }
        if req.volume_content_source.is_some() {
            return Err(Status::invalid_argument(
                "volume content sources (snapshots, clones) are not supported",
            ));
        }
        if !state::topology_allows(req.accessibility_requirements.as_ref(), &d.node_id) {
            return Err(Status::resource_exhausted(format!(
                "this driver provisions on node {} only, which the requested topology excludes",
                d.node_id
            )));
        }
        let capacity = state::capacity_for(
            req.capacity_range.as_ref(),
            state::min_capacity(state::fs_type(&req.volume_capabilities)),
        )?;
        let _guard = d.lock.lock().await;
        if let Some(existing) = d.store.get(&id) {
            if !state::fits(existing.capacity, req.capacity_range.as_ref())
                || existing.block != state::is_block(&req.volume_capabilities)
            {
                return Err(Status::already_exists(format!(
                    "volume {id} exists with {} bytes and other capabilities",
                    existing.capacity
                )));
            }
            return Ok(Response::new(api::CreateVolumeResponse {
                volume: Some(volume_of(&existing)),
            }));
        }
        let available = disk::usage(&d.statedir)?.bytes.1;
        if capacity > available {
            return Err(Status::resource_exhausted(format!(
                "{capacity} bytes requested, {available} available on node {}",
                d.node_id
            )));
        }
        let v = Volume {
            id: id.clone(),
            name: req.name.clone(),
            capacity,
            node: d.node_id.clone(),
            block: state::is_block(&req.volume_capabilities),
            ephemeral: false,
        };
        disk::ensure_image(&disk::image_path(&d.statedir, &id), capacity)?;
        d.store.put(&v)?;
        tracing::info!(volume = id, capacity, "volume created");
        Ok(Response::new(api::CreateVolumeResponse {
            volume: Some(volume_of(&v)),
        }))
    }

    async fn delete_volume(
        &self,
        r: Request<api::DeleteVolumeRequest>,
    ) -> R<api::DeleteVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("DeleteVolume", &req.volume_id);
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume ID missing in request"));
        }
        let _guard = d.lock.lock().await;
        let image = disk::image_path(&d.statedir, &req.volume_id);
        if disk::is_attached(&image) {
            return Err(Status::failed_precondition(format!(
                "volume {} is still staged on this node",
                req.volume_id
            )));
        }
        match std::fs::remove_file(&image) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Status::internal(format!(
                    "removing {}: {e}",
                    image.display()
                )));
            }
            _ => {}
        }
        d.store.delete(&req.volume_id)?;
        tracing::info!(volume = req.volume_id, "volume deleted");
        Ok(Response::new(api::DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        r: Request<api::ControllerPublishVolumeRequest>,
    ) -> R<api::ControllerPublishVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("ControllerPublishVolume", &req.volume_id);
        if !d.attach {
            return Err(Status::unimplemented(
                "ControllerPublishVolume: attach is disabled",
            ));
        }
        if req.volume_id.is_empty() || req.node_id.is_empty() {
            return Err(Status::invalid_argument(
                "volume ID and node ID are required",
            ));
        }
        let v = d
            .store
            .get(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("volume {} not found", req.volume_id)))?;
        if v.node != req.node_id {
            return Err(Status::not_found(format!(
                "node {} not found: volume {} lives on node {}",
                req.node_id, v.id, v.node
            )));
        }
        Ok(Response::new(api::ControllerPublishVolumeResponse {
            publish_context: Default::default(),
        }))
    }

    async fn controller_unpublish_volume(
        &self,
        r: Request<api::ControllerUnpublishVolumeRequest>,
    ) -> R<api::ControllerUnpublishVolumeResponse> {
        let req = r.into_inner();
        self.0.log_call("ControllerUnpublishVolume", &req.volume_id);
        if !self.0.attach {
            return Err(Status::unimplemented(
                "ControllerUnpublishVolume: attach is disabled",
            ));
        }
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume ID missing in request"));
        }
        Ok(Response::new(api::ControllerUnpublishVolumeResponse {}))
    }

    async fn validate_volume_capabilities(
        &self,
        r: Request<api::ValidateVolumeCapabilitiesRequest>,
    ) -> R<api::ValidateVolumeCapabilitiesResponse> {
        let req = r.into_inner();
        self.0
            .log_call("ValidateVolumeCapabilities", &req.volume_id);
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume ID missing in request"));
        }
        if self.0.store.get(&req.volume_id).is_none() {
            return Err(Status::not_found(format!(
                "volume {} not found",
                req.volume_id
            )));
        }
        Ok(Response::new(
            match state::unsupported(&req.volume_capabilities) {
                Some(message) => api::ValidateVolumeCapabilitiesResponse {
                    confirmed: None,
                    message,
                },
                None => api::ValidateVolumeCapabilitiesResponse {
                    confirmed: Some(api::validate_volume_capabilities_response::Confirmed {
                        volume_context: req.volume_context,
                        volume_capabilities: req.volume_capabilities,
                        parameters: req.parameters,
                        mutable_parameters: Default::default(),
                    }),
                    message: String::new(),
                },
            },
        ))
    }

    async fn list_volumes(
        &self,
        r: Request<api::ListVolumesRequest>,
    ) -> R<api::ListVolumesResponse> {
        let req = r.into_inner();
        self.0.log_call("ListVolumes", "");
        let all = self.0.store.list();
        let start: usize = if req.starting_token.is_empty() {
            0
        } else {
            req.starting_token
                .parse()
                .ok()
                .filter(|n| *n <= all.len())
                .ok_or_else(|| {
                    Status::aborted(format!("invalid starting token {}", req.starting_token))
                })?
        };
        let max = usize::try_from(req.max_entries).unwrap_or(0);
        let end = if max == 0 {
            all.len()
        } else {
            (start + max).min(all.len())
        };
        Ok(Response::new(api::ListVolumesResponse {
            entries: all[start..end]
                .iter()
                .map(|v| api::list_volumes_response::Entry {
                    volume: Some(volume_of(v)),
                    status: None,
                })
                .collect(),
            next_token: if end < all.len() {
                end.to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn get_capacity(
        &self,
        r: Request<api::GetCapacityRequest>,
    ) -> R<api::GetCapacityResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("GetCapacity", "");
        let elsewhere = req.accessible_topology.as_ref().is_some_and(|t| {
            t.segments
                .get(state::TOPOLOGY_KEY)
                .is_some_and(|n| *n != d.node_id)
        });
        let available = if elsewhere {
            0
        } else {
            disk::usage(&d.statedir)?.bytes.1
        };
        Ok(Response::new(api::GetCapacityResponse {
            available_capacity: available,
            maximum_volume_size: Some(available),
            minimum_volume_size: None,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<api::ControllerGetCapabilitiesRequest>,
    ) -> R<api::ControllerGetCapabilitiesResponse> {
        use api::controller_service_capability::{Rpc, Type, rpc};
        self.0.log_call("ControllerGetCapabilities", "");
        let mut rpcs = vec![
            rpc::Type::CreateDeleteVolume,
            rpc::Type::ListVolumes,
            rpc::Type::GetCapacity,
            rpc::Type::ExpandVolume,
            rpc::Type::SingleNodeMultiWriter,
        ];
        if self.0.attach {
            rpcs.push(rpc::Type::PublishUnpublishVolume);
        }
        Ok(Response::new(api::ControllerGetCapabilitiesResponse {
            capabilities: rpcs
                .into_iter()
                .map(|t| api::ControllerServiceCapability {
                    r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
                })
                .collect(),
        }))
    }

    async fn controller_expand_volume(
        &self,
        r: Request<api::ControllerExpandVolumeRequest>,
    ) -> R<api::ControllerExpandVolumeResponse> {
        let req = r.into_inner();
        let d = &self.0;
        d.log_call("ControllerExpandVolume", &req.volume_id);
        if req.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume ID missing in request"));
        }
        let wanted = state::capacity_for(req.capacity_range.as_ref(), 0)?;
        let _guard = d.lock.lock().await;
        let mut v = d
            .store
            .get(&req.volume_id)
            .ok_or_else(|| Status::not_found(format!("volume {} not found", req.volume_id)))?;
        if wanted > v.capacity {
            let available = disk::usage(&d.statedir)?.bytes.1;
            if wanted - v.capacity > available {
                return Err(Status::resource_exhausted(format!(
                    "{} more bytes requested, {available} available",
                    wanted - v.capacity
                )));
            }
            disk::ensure_image(&disk::image_path(&d.statedir, &v.id), wanted)?;
            v.capacity = wanted;
            d.store.put(&v)?;
            tracing::info!(volume = v.id, capacity = wanted, "volume expanded");
        }
        Ok(Response::new(api::ControllerExpandVolumeResponse {
            capacity_bytes: v.capacity,
            // The loop device and the filesystem learn the new size on the node.
            node_expansion_required: true,
        }))
    }

    async fn controller_get_volume(
        &self,
        r: Request<api::ControllerGetVolumeRequest>,
    ) -> R<api::ControllerGetVolumeResponse> {
        let req = r.into_inner();
        self.0.log_call("ControllerGetVolume", &req.volume_id);
        Err(Status::unimplemented(
            "ControllerGetVolume is not supported",
        ))
    }

    async fn controller_modify_volume(
        &self,
        r: Request<api::ControllerModifyVolumeRequest>,
    ) -> R<api::ControllerModifyVolumeResponse> {
        let req = r.into_inner();
        self.0.log_call("ControllerModifyVolume", &req.volume_id);
        Err(Status::unimplemented(
            "ControllerModifyVolume is not supported",
        ))
    }

    async fn create_snapshot(
        &self,
        _: Request<api::CreateSnapshotRequest>,
    ) -> R<api::CreateSnapshotResponse> {
        Err(Status::unimplemented("snapshots are not supported"))
    }

    async fn delete_snapshot(
        &self,
        _: Request<api::DeleteSnapshotRequest>,
    ) -> R<api::DeleteSnapshotResponse> {
        Err(Status::unimplemented("snapshots are not supported"))
    }

    async fn list_snapshots(
        &self,
        _: Request<api::ListSnapshotsRequest>,
    ) -> R<api::ListSnapshotsResponse> {
        Err(Status::unimplemented("snapshots are not supported"))
    }

    async fn get_snapshot(
        &self,
        _: Request<api::GetSnapshotRequest>,
    ) -> R<api::GetSnapshotResponse> {
        Err(Status::unimplemented("snapshots are not supported"))
    }
}
