//! Container lifecycle hooks (upstream `pkg/kubelet/lifecycle/handlers.go`): postStart
//! and preStop through exec, httpGet or sleep.

use crate::cri::remote::RemoteRuntime;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use std::time::Duration;

/// Runs a hook; Err carries upstream's failure message.
pub async fn run_hook(
    rt: &RemoteRuntime,
    h: &LifecycleHandler,
    c: &Container,
    container_id: &str,
    pod_ip: &str,
    budget: Duration,
) -> Result<(), String> {
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64).min(budget)).await;
        return Ok(());
    }
    // exec / httpGet / tcpSocket run as a probe would, bounded by the budget.
    let probe = Probe {
        exec: h.exec.clone(),
        http_get: h.http_get.clone(),
        tcp_socket: h.tcp_socket.clone(),
        ..Default::default()
    };
    match crate::prober::run_probe(
        rt,
        &probe,
        c,
        container_id,
        pod_ip,
        budget.max(Duration::from_secs(1)),
    )
    .await
    {
        crate::prober::ProbeResult::Success => Ok(()),
        crate::prober::ProbeResult::Failure(m) => Err(m),
    }
}
