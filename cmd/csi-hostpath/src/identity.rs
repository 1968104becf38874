//! The CSI Identity service: the driver's name and version, what it can do (a controller
//! service, topology, online expansion) and whether it is ready.

use crate::Driver;
use csi::v1 as api;
use csi::v1::identity_server::Identity;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct IdentityService(pub Arc<Driver>);

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _: Request<api::GetPluginInfoRequest>,
    ) -> Result<Response<api::GetPluginInfoResponse>, Status> {
        self.0.log_call("GetPluginInfo", "");
        Ok(Response::new(api::GetPluginInfoResponse {
            name: self.0.name.clone(),
            vendor_version: crate::VERSION.to_string(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<api::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<api::GetPluginCapabilitiesResponse>, Status> {
        use api::plugin_capability::{Service, Type, VolumeExpansion, service, volume_expansion};
        self.0.log_call("GetPluginCapabilities", "");
        let service = |t: service::Type| api::PluginCapability {
            r#type: Some(Type::Service(Service { r#type: t as i32 })),
        };
        Ok(Response::new(api::GetPluginCapabilitiesResponse {
            capabilities: vec![
                service(service::Type::ControllerService),
                service(service::Type::VolumeAccessibilityConstraints),
                api::PluginCapability {
                    r#type: Some(Type::VolumeExpansion(VolumeExpansion {
                        r#type: volume_expansion::Type::Online as i32,
                    })),
                },
            ],
        }))
    }

    async fn probe(
        &self,
        _: Request<api::ProbeRequest>,
    ) -> Result<Response<api::ProbeResponse>, Status> {
        self.0.log_call("Probe", "");
        Ok(Response::new(api::ProbeResponse { ready: Some(true) }))
    }
}
