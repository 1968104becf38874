//! The node-driver-registrar role, built into the driver: a `pluginregistration`
//! Registration service on `<plugin-registration-path>/<driver>-reg.sock`, where the
//! kubelet's plugin watcher finds it and learns the driver's socket (as the kubelet sees
//! it). A refused registration ends the process, as upstream's registrar does, so the
//! container restarts and tries again. Upstream twin: kubernetes-csi/node-driver-registrar
//! (`cmd/csi-node-driver-registrar/node_register.go`).

use csi::pluginregistration as api;
use csi::pluginregistration::registration_server::Registration;
use tonic::{Request, Response, Status};

/// The CSI versions the kubelet may speak to the driver.
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0.0"];

pub struct RegistrationService {
    pub driver: String,
    /// The driver's socket as the kubelet sees it (`--kubelet-registration-path`).
    pub endpoint: String,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(
        &self,
        _: Request<api::InfoRequest>,
    ) -> Result<Response<api::PluginInfo>, Status> {
        tracing::info!(
            driver = self.driver,
            endpoint = self.endpoint,
            "registration: kubelet asked for plugin info"
        );
        Ok(Response::new(api::PluginInfo {
            r#type: csi::CSI_PLUGIN_TYPE.to_string(),
            name: self.driver.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        r: Request<api::RegistrationStatus>,
    ) -> Result<Response<api::RegistrationStatusResponse>, Status> {
        let status = r.into_inner();
        if !status.plugin_registered {
            tracing::error!(
                "Registration process failed with error: {}, restarting registration container.",
                status.error
            );
            // Answer first, then exit: the kubelet should not see a broken call.
            tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                std::process::exit(1);
            });
        } else {
            tracing::info!(
                driver = self.driver,
                "registration: the kubelet registered the driver"
            );
        }
        Ok(Response::new(api::RegistrationStatusResponse {}))
    }
}
