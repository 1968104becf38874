//! A fake CRI runtime (upstream's kubemark "hollow node" runtime): an in-process
//! `runtime.v1` RuntimeService + ImageService on a unix socket that keeps sandboxes and
//! containers in memory — no processes, no network. Sandboxes get IPs from the
//! configured pod CIDR; containers run until stopped; every image is present; exec
//! probes succeed. For scale tests and simulated nodes, beside (never instead of)
//! containerd.

use super::api;
use api::image_service_server::{ImageService, ImageServiceServer};
use api::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use std::collections::HashMap;
use std::sync::Mutex;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, api::PodSandboxStatus>,
    containers: HashMap<String, (String, api::ContainerStatus)>,
    next: u64,
    next_ip: u32,
    cidr_base: u32,
}

pub struct FakeRuntime {
    state: Mutex<State>,
    log_dir: std::path::PathBuf,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

impl FakeRuntime {
    pub fn new(log_dir: std::path::PathBuf) -> Self {
        FakeRuntime {
            state: Mutex::new(State {
                cidr_base: u32::from(std::net::Ipv4Addr::new(10, 200, 0, 0)),
                ..Default::default()
            }),
            log_dir,
        }
    }

    fn id(st: &mut State) -> String {
        st.next += 1;
        format!("{:064x}", st.next)
    }

    /// Serves on `socket` until the process ends.
    pub async fn serve(self, socket: std::path::PathBuf) -> Result<(), String> {
        let incoming = component_base::grpc::unix_incoming(&socket)?;
        let me = std::sync::Arc::new(self);
        tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::from_arc(me.clone()))
            .add_service(ImageServiceServer::from_arc(me))
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| e.to_string())
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self, _: Request<api::VersionRequest>) -> R<api::VersionResponse> {
        Ok(Response::new(api::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "0.1.0".into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<api::RunPodSandboxRequest>,
    ) -> R<api::RunPodSandboxResponse> {
        let cfg = r.into_inner().config.unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        let id = Self::id(&mut st);
        st.next_ip += 1;
        let ip = std::net::Ipv4Addr::from(st.cidr_base + 2 + st.next_ip % 65000);
        let status = api::PodSandboxStatus {
            id: id.clone(),
            metadata: cfg.metadata.clone(),
            state: api::PodSandboxState::SandboxReady as i32,
            created_at: now(),
            network: Some(api::PodSandboxNetworkStatus {
                ip: ip.to_string(),
                additional_ips: Vec::new(),
            }),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            ..Default::default()
        };
        st.sandboxes.insert(id.clone(), status);
        Ok(Response::new(api::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<api::StopPodSandboxRequest>,
    ) -> R<api::StopPodSandboxResponse> {
        let id = r.into_inner().pod_sandbox_id;
        let mut st = self.state.lock().unwrap();
        if let Some(s) = st.sandboxes.get_mut(&id) {
            s.state = api::PodSandboxState::SandboxNotready as i32;
        }
        for (sb, c) in st.containers.values_mut() {
            if *sb == id && c.state == api::ContainerState::ContainerRunning as i32 {
                c.state = api::ContainerState::ContainerExited as i32;
                c.finished_at = now();
                c.exit_code = 137;
            }
        }
        Ok(Response::new(api::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<api::RemovePodSandboxRequest>,
    ) -> R<api::RemovePodSandboxResponse> {
        let id = r.into_inner().pod_sandbox_id;
        let mut st = self.state.lock().unwrap();
        st.sandboxes.remove(&id);
        st.containers.retain(|_, (sb, _)| *sb != id);
        Ok(Response::new(api::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<api::PodSandboxStatusRequest>,
    ) -> R<api::PodSandboxStatusResponse> {
        let id = r.into_inner().pod_sandbox_id;
        let st = self.state.lock().unwrap();
        let s = st
            .sandboxes
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("sandbox {id} not found")))?;
        Ok(Response::new(api::PodSandboxStatusResponse {
            status: Some(s),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        _: Request<api::ListPodSandboxRequest>,
    ) -> R<api::ListPodSandboxResponse> {
        let st = self.state.lock().unwrap();
        let items = st
            .sandboxes
            .values()
            .map(|s| api::PodSandbox {
                id: s.id.clone(),
                metadata: s.metadata.clone(),
                state: s.state,
                created_at: s.created_at,
                labels: s.labels.clone(),
                annotations: s.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect();
        Ok(Response::new(api::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<api::CreateContainerRequest>,
    ) -> R<api::CreateContainerResponse> {
        let r = r.into_inner();
        let cfg = r.config.unwrap_or_default();
        let log_dir = r
            .sandbox_config
            .map(|s| s.log_directory)
            .filter(|d| !d.is_empty());
        let mut st = self.state.lock().unwrap();
        if !st.sandboxes.contains_key(&r.pod_sandbox_id) {
            return Err(Status::not_found(format!(
                "sandbox {} not found",
                r.pod_sandbox_id
            )));
        }
        let id = Self::id(&mut st);
        let log_path = match log_dir {
            Some(d) => format!("{d}/{}", cfg.log_path),
            None => self.log_dir.join(&id).display().to_string(),
        };
        if let Some(p) = std::path::Path::new(&log_path).parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let _ = std::fs::write(&log_path, b"");
        let status = api::ContainerStatus {
            id: id.clone(),
            metadata: cfg.metadata.clone(),
            state: api::ContainerState::ContainerCreated as i32,
            created_at: now(),
            image: cfg.image.clone(),
            image_ref: cfg
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default(),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            log_path,
            ..Default::default()
        };
        st.containers.insert(id.clone(), (r.pod_sandbox_id, status));
        Ok(Response::new(api::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<api::StartContainerRequest>,
    ) -> R<api::StartContainerResponse> {
        let id = r.into_inner().container_id;
        let mut st = self.state.lock().unwrap();
        let (_, c) = st
            .containers
            .get_mut(&id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        c.state = api::ContainerState::ContainerRunning as i32;
        c.started_at = now();
        Ok(Response::new(api::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<api::StopContainerRequest>,
    ) -> R<api::StopContainerResponse> {
        let id = r.into_inner().container_id;
        let mut st = self.state.lock().unwrap();
        if let Some((_, c)) = st.containers.get_mut(&id)
            && c.state == api::ContainerState::ContainerRunning as i32
        {
            c.state = api::ContainerState::ContainerExited as i32;
            c.finished_at = now();
            c.exit_code = 0;
        }
        Ok(Response::new(api::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<api::RemoveContainerRequest>,
    ) -> R<api::RemoveContainerResponse> {
        let id = r.into_inner().container_id;
        self.state.lock().unwrap().containers.remove(&id);
        Ok(Response::new(api::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        _: Request<api::ListContainersRequest>,
    ) -> R<api::ListContainersResponse> {
        let st = self.state.lock().unwrap();
        let containers = st
            .containers
            .values()
            .map(|(sb, c)| api::Container {
                id: c.id.clone(),
                pod_sandbox_id: sb.clone(),
                metadata: c.metadata.clone(),
                image: c.image.clone(),
                image_ref: c.image_ref.clone(),
                state: c.state,
                created_at: c.created_at,
                labels: c.labels.clone(),
                annotations: c.annotations.clone(),
                image_id: c.image_ref.clone(),
            })
            .collect();
        Ok(Response::new(api::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<api::ContainerStatusRequest>,
    ) -> R<api::ContainerStatusResponse> {
        let id = r.into_inner().container_id;
        let st = self.state.lock().unwrap();
        let (_, c) = st
            .containers
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        Ok(Response::new(api::ContainerStatusResponse {
            status: Some(c.clone()),
            ..Default::default()
        }))
    }

    async fn update_container_resources(
        &self,
        _: Request<api::UpdateContainerResourcesRequest>,
    ) -> R<api::UpdateContainerResourcesResponse> {
        Ok(Response::new(api::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        _: Request<api::ReopenContainerLogRequest>,
    ) -> R<api::ReopenContainerLogResponse> {
        Ok(Response::new(api::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, _: Request<api::ExecSyncRequest>) -> R<api::ExecSyncResponse> {
        Ok(Response::new(api::ExecSyncResponse::default()))
    }

    async fn exec(&self, _: Request<api::ExecRequest>) -> R<api::ExecResponse> {
        Err(Status::unimplemented("the fake runtime does not stream"))
    }

    async fn attach(&self, _: Request<api::AttachRequest>) -> R<api::AttachResponse> {
        Err(Status::unimplemented("the fake runtime does not stream"))
    }

    async fn port_forward(
        &self,
        _: Request<api::PortForwardRequest>,
    ) -> R<api::PortForwardResponse> {
        Err(Status::unimplemented("the fake runtime does not stream"))
    }

    async fn container_stats(
        &self,
        _: Request<api::ContainerStatsRequest>,
    ) -> R<api::ContainerStatsResponse> {
        Ok(Response::new(api::ContainerStatsResponse::default()))
    }

    async fn list_container_stats(
        &self,
        _: Request<api::ListContainerStatsRequest>,
    ) -> R<api::ListContainerStatsResponse> {
        Ok(Response::new(api::ListContainerStatsResponse::default()))
    }

    async fn pod_sandbox_stats(
        &self,
        _: Request<api::PodSandboxStatsRequest>,
    ) -> R<api::PodSandboxStatsResponse> {
        Ok(Response::new(api::PodSandboxStatsResponse::default()))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _: Request<api::ListPodSandboxStatsRequest>,
    ) -> R<api::ListPodSandboxStatsResponse> {
        Ok(Response::new(api::ListPodSandboxStatsResponse::default()))
    }

    async fn update_runtime_config(
        &self,
        r: Request<api::UpdateRuntimeConfigRequest>,
    ) -> R<api::UpdateRuntimeConfigResponse> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if let Some((ip, _)) = cidr.split_once('/')
            && let Ok(ip) = ip.parse::<std::net::Ipv4Addr>()
        {
            self.state.lock().unwrap().cidr_base = u32::from(ip);
        }
        Ok(Response::new(api::UpdateRuntimeConfigResponse {}))
    }

    async fn status(&self, _: Request<api::StatusRequest>) -> R<api::StatusResponse> {
        let cond = |t: &str| api::RuntimeCondition {
            r#type: t.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        Ok(Response::new(api::StatusResponse {
            status: Some(api::RuntimeStatus {
                conditions: vec![cond("RuntimeReady"), cond("NetworkReady")],
            }),
            ..Default::default()
        }))
    }

    async fn checkpoint_container(
        &self,
        _: Request<api::CheckpointContainerRequest>,
    ) -> R<api::CheckpointContainerResponse> {
        Err(Status::unimplemented("checkpointing is not supported"))
    }

    type GetContainerEventsStream = std::pin::Pin<
        Box<
            dyn futures::Stream<Item = Result<api::ContainerEventResponse, Status>>
                + Send
                + 'static,
        >,
    >;

    async fn get_container_events(
        &self,
        _: Request<api::GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        Err(Status::unimplemented("container events are not supported"))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<api::ListMetricDescriptorsRequest>,
    ) -> R<api::ListMetricDescriptorsResponse> {
        Ok(Response::new(api::ListMetricDescriptorsResponse::default()))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<api::ListPodSandboxMetricsRequest>,
    ) -> R<api::ListPodSandboxMetricsResponse> {
        Ok(Response::new(api::ListPodSandboxMetricsResponse::default()))
    }

    async fn runtime_config(
        &self,
        _: Request<api::RuntimeConfigRequest>,
    ) -> R<api::RuntimeConfigResponse> {
        Ok(Response::new(api::RuntimeConfigResponse::default()))
    }
}

#[tonic::async_trait]
impl ImageService for FakeRuntime {
    async fn list_images(&self, _: Request<api::ListImagesRequest>) -> R<api::ListImagesResponse> {
        Ok(Response::new(api::ListImagesResponse::default()))
    }

    async fn image_status(
        &self,
        r: Request<api::ImageStatusRequest>,
    ) -> R<api::ImageStatusResponse> {
        let image = r.into_inner().image.map(|i| i.image).unwrap_or_default();
        Ok(Response::new(api::ImageStatusResponse {
            image: Some(api::Image {
                id: image.clone(),
                repo_tags: vec![image],
                size: 1 << 20,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn pull_image(&self, r: Request<api::PullImageRequest>) -> R<api::PullImageResponse> {
        Ok(Response::new(api::PullImageResponse {
            image_ref: r.into_inner().image.map(|i| i.image).unwrap_or_default(),
        }))
    }

    async fn remove_image(
        &self,
        _: Request<api::RemoveImageRequest>,
    ) -> R<api::RemoveImageResponse> {
        Ok(Response::new(api::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _: Request<api::ImageFsInfoRequest>,
    ) -> R<api::ImageFsInfoResponse> {
        Ok(Response::new(api::ImageFsInfoResponse::default()))
    }
}
