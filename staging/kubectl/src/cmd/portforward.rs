//! `kubectl port-forward TYPE/NAME [LOCAL_PORT:]REMOTE_PORT...`: local listeners for a
//! pod's ports (a Service's ports map to its target ports first). Upstream twin:
//! `kubectl/pkg/cmd/portforward/portforward.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use crate::polymorphic::attachable_pod;
use cli_runtime::client;
use cli_runtime::discovery::percent_encode;
use cli_runtime::portforward::{self, ForwardedPort};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct PortForwardArgs {
    /// TYPE/NAME [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]
    pub args: Vec<String>,
    /// Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a value. When localhost is supplied, kubectl will try to bind on both 127.0.0.1 and ::1 and will fail if neither of these addresses are available to bind.
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running
    #[arg(long = "pod-running-timeout", default_value = "1m0s")]
    pub pod_running_timeout: String,
}

fn usage(m: &str) -> CmdError {
    CmdError::plain(format!(
        "error: {m}\nSee 'kubectl port-forward -h' for help and examples"
    ))
}

/// `[LOCAL]:REMOTE` into its halves (one number stands for both).
fn split_port(p: &str) -> (&str, &str) {
    match p.split_once(':') {
        Some((l, r)) => (l, r),
        None => (p, p),
    }
}

/// A named port of one of the pod's containers.
fn container_port_by_name(pod: &Value, name: &str) -> Result<u16, CmdError> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .map(|p| p as u16)
        .ok_or_else(|| {
            CmdError::msg(format!(
                "Pod '{}' does not have a named port '{name}'",
                pod["metadata"]["name"].as_str().unwrap_or_default()
            ))
        })
}

/// upstream `translateServicePortToTargetPort`: a Service port (number or name) to the
/// pod's port behind it; with the Service port's number.
fn service_to_target(svc: &Value, pod: &Value, remote: &str) -> Result<(u16, u16), CmdError> {
    let svc_name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let ports: Vec<&Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let port = match remote.parse::<u16>() {
        Ok(n) => n,
        Err(_) => ports
            .iter()
            .find(|p| p["name"] == remote)
            .and_then(|p| p["port"].as_u64())
            .map(|p| p as u16)
            .ok_or_else(|| {
                CmdError::msg(format!(
                    "Service '{svc_name}' does not have a named port '{remote}'"
                ))
            })?,
    };
    let sp = ports
        .iter()
        .find(|p| p["port"].as_u64() == Some(port as u64))
        .ok_or_else(|| {
            CmdError::msg(format!(
                "Service {svc_name} does not have a service port {port}"
            ))
        })?;
    let target = match &sp["targetPort"] {
        Value::Number(n) if n.as_u64().unwrap_or(0) > 0 => n.as_u64().unwrap_or(0) as u16,
        Value::String(name) => container_port_by_name(pod, name)?,
        _ => port,
    };
    Ok((port, target))
}

fn parse_port(s: &str, what: &str) -> Result<u16, CmdError> {
    s.parse::<u16>()
        .map_err(|e| CmdError::msg(format!("Error parsing {what} port '{s}': {e}")))
}

pub async fn run(f: &mut Factory, a: PortForwardArgs) -> CmdResult {
    if a.args.len() < 2 {
        return Err(usage(
            "TYPE/NAME and list of ports are required for port-forward",
        ));
    }
    let timeout =
        cli_runtime::config_flags::parse_duration(&a.pod_running_timeout).map_err(|e| usage(&e))?;
    if timeout.is_zero() {
        return Err(usage("--pod-running-timeout must be higher than zero"));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let target = &a.args[0];
    let pod = attachable_pod(f, &client, &namespace, target, timeout).await?;
    // A Service's ports are its own: they map to the pods' target ports.
    let service = match target.split_once('/') {
        Some(("svc" | "service" | "services", name)) => Some(
            client
                .get_json(
                    &format!(
                        "/api/v1/namespaces/{namespace}/services/{}",
                        percent_encode(name)
                    ),
                    client::JSON,
                )
                .await?,
        ),
        _ => None,
    };
    let mut ports = Vec::new();
    for p in &a.args[1..] {
        let (local, remote) = split_port(p);
        if remote.is_empty() {
            return Err(CmdError::msg("remote port cannot be empty"));
        }
        // The port as named (a Service's own port, or the pod's) and the pod's port.
        let (named, remote_port) = match &service {
            Some(svc) => service_to_target(svc, &pod, remote)?,
            None => {
                let n = match remote.parse::<u16>() {
                    Ok(n) => n,
                    Err(_) => container_port_by_name(&pod, remote)?,
                };
                (n, n)
            }
        };
        // One port given: listen locally on the port as named.
        let local_port = if local == remote {
            named
        } else if local.is_empty() {
            0
        } else {
            parse_port(local, "local")?
        };
        if remote_port == 0 {
            return Err(CmdError::msg(format!(
                "Error parsing remote port '{remote}': remote port must be > 0"
            )));
        }
        ports.push(ForwardedPort {
            local: local_port,
            remote: remote_port,
        });
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase != "Running" {
        return Err(CmdError::msg(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}/portforward",
        percent_encode(pod["metadata"]["namespace"].as_str().unwrap_or(&namespace)),
        percent_encode(pod["metadata"]["name"].as_str().unwrap_or_default())
    );
    output::flush();
    let conn = portforward::dial(&client, &path).await?;
    let forwarding = portforward::forward(conn, &a.address, &ports, None);
    tokio::select! {
        r = forwarding => r.map_err(CmdError::from),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_ports_map_to_the_pods_target_ports() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}});
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [
            {"name": "web", "port": 80, "targetPort": "http"},
            {"name": "raw", "port": 81, "targetPort": 9090},
            {"port": 82}]}});
        assert_eq!(service_to_target(&svc, &pod, "80").unwrap(), (80, 8080));
        assert_eq!(service_to_target(&svc, &pod, "web").unwrap(), (80, 8080));
        assert_eq!(service_to_target(&svc, &pod, "81").unwrap(), (81, 9090));
        assert_eq!(service_to_target(&svc, &pod, "82").unwrap(), (82, 82));
        assert_eq!(
            service_to_target(&svc, &pod, "83").unwrap_err().text,
            "error: Service web does not have a service port 83"
        );
        assert_eq!(
            container_port_by_name(&pod, "grpc").unwrap_err().text,
            "error: Pod 'web' does not have a named port 'grpc'"
        );
        assert_eq!(split_port(":80"), ("", "80"));
        assert_eq!(split_port("8080"), ("8080", "8080"));
    }
}
