//! Connection to a CRI runtime (`--container-runtime-endpoint=unix:///...`), each call
//! bounded by `runtimeRequestTimeout` as upstream's remote runtime service.

use super::api;
use api::image_service_client::ImageServiceClient;
use api::runtime_service_client::RuntimeServiceClient;
use std::time::Duration;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct RemoteRuntime {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    pub endpoint: String,
}

pub type Result<T> = std::result::Result<T, tonic::Status>;

impl RemoteRuntime {
    /// Connects lazily: the runtime may come up after the kubelet.
    pub fn connect(endpoint: &str, timeout: Duration) -> std::result::Result<Self, String> {
        let channel = component_base::grpc::unix_channel(endpoint, timeout)?;
        Ok(RemoteRuntime {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(16 << 20),
            images: ImageServiceClient::new(channel).max_decoding_message_size(16 << 20),
            endpoint: endpoint.to_string(),
        })
    }

    pub async fn version(&self) -> Result<api::VersionResponse> {
        Ok(self
            .runtime
            .clone()
            .version(api::VersionRequest {
                version: "v1".into(),
            })
            .await?
            .into_inner())
    }

    pub async fn status(&self) -> Result<api::StatusResponse> {
        Ok(self
            .runtime
            .clone()
            .status(api::StatusRequest { verbose: false })
            .await?
            .into_inner())
    }

    pub async fn update_pod_cidr(&self, cidr: &str) -> Result<()> {
        self.runtime
            .clone()
            .update_runtime_config(api::UpdateRuntimeConfigRequest {
                runtime_config: Some(api::RuntimeConfig {
                    network_config: Some(api::NetworkConfig {
                        pod_cidr: cidr.to_string(),
                    }),
                }),
            })
            .await?;
        Ok(())
    }

    pub async fn list_sandboxes(&self) -> Result<Vec<api::PodSandbox>> {
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items)
    }

    pub async fn sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        self.runtime
            .clone()
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await?
            .into_inner()
            .status
            .ok_or_else(|| tonic::Status::not_found(format!("sandbox {id}")))
    }

    pub async fn run_sandbox(&self, config: api::PodSandboxConfig) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id)
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
        Ok(())
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
        Ok(())
    }

    pub async fn list_containers(&self) -> Result<Vec<api::Container>> {
        Ok(self
            .runtime
            .clone()
            .list_containers(api::ListContainersRequest { filter: None })
            .await?
            .into_inner()
            .containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        self.runtime
            .clone()
            .container_status(api::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await?
            .into_inner()
            .status
            .ok_or_else(|| tonic::Status::not_found(format!("container {id}")))
    }

    pub async fn create_container(
        &self,
        sandbox: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await?
            .into_inner()
            .container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .start_container(api::StartContainerRequest {
                container_id: id.into(),
            })
            .await?;
        Ok(())
    }

    /// Stops with `timeout` seconds between SIGTERM and SIGKILL.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let mut req = tonic::Request::new(api::StopContainerRequest {
            container_id: id.into(),
            timeout,
        });
        // The call itself may take the whole grace period.
        req.set_timeout(Duration::from_secs(timeout.max(0) as u64 + 120));
        self.runtime.clone().stop_container(req).await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .remove_container(api::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await?;
        Ok(())
    }

    /// Changes a running container's cgroup limits in place.
    /// The bytes the container's writable layer uses (CRI `ContainerStats`), if the
    /// runtime reports them.
    pub async fn writable_layer_bytes(&self, id: &str) -> Result<Option<u64>> {
        let stats = self
            .runtime
            .clone()
            .container_stats(api::ContainerStatsRequest {
                container_id: id.into(),
            })
            .await?
            .into_inner()
            .stats;
        Ok(stats
            .and_then(|s| s.writable_layer)
            .and_then(|w| w.used_bytes)
            .map(|b| b.value))
    }

    pub async fn update_container_resources(
        &self,
        id: &str,
        linux: api::LinuxContainerResources,
    ) -> Result<()> {
        self.runtime
            .clone()
            .update_container_resources(api::UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(linux),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Makes the runtime write a container's log to a fresh file at its log path.
    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .reopen_container_log(api::ReopenContainerLogRequest {
                container_id: id.into(),
            })
            .await?;
        Ok(())
    }

    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<api::ExecSyncResponse> {
        let mut req = tonic::Request::new(api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout.as_secs().max(1) as i64,
        });
        req.set_timeout(timeout + Duration::from_secs(5));
        Ok(self.runtime.clone().exec_sync(req).await?.into_inner())
    }

    pub async fn exec(&self, req: api::ExecRequest) -> Result<String> {
        Ok(self.runtime.clone().exec(req).await?.into_inner().url)
    }

    pub async fn attach(&self, req: api::AttachRequest) -> Result<String> {
        Ok(self.runtime.clone().attach(req).await?.into_inner().url)
    }

    pub async fn port_forward(&self, sandbox: &str, ports: Vec<i32>) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .port_forward(api::PortForwardRequest {
                pod_sandbox_id: sandbox.into(),
                port: ports,
            })
            .await?
            .into_inner()
            .url)
    }

    pub async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        Ok(self
            .images
            .clone()
            .image_status(api::ImageStatusRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner()
            .image)
    }

    pub async fn pull_image(&self, image: &str, auth: Option<api::AuthConfig>) -> Result<String> {
        Ok(self
            .images
            .clone()
            .pull_image(api::PullImageRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth,
                sandbox_config: None,
            })
            .await?
            .into_inner()
            .image_ref)
    }

    pub async fn list_images(&self) -> Result<Vec<api::Image>> {
        Ok(self
            .images
            .clone()
            .list_images(api::ListImagesRequest { filter: None })
            .await?
            .into_inner()
            .images)
    }

    pub async fn remove_image(&self, image: &str) -> Result<()> {
        self.images
            .clone()
            .remove_image(api::RemoveImageRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
            })
            .await?;
        Ok(())
    }

    pub async fn image_fs_info(&self) -> Result<api::ImageFsInfoResponse> {
        Ok(self
            .images
            .clone()
            .image_fs_info(api::ImageFsInfoRequest {})
            .await?
            .into_inner())
    }
}
