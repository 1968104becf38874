//! `kubeadm init|join phase kubelet-start` and the kubelet checks (upstream
//! `phases/kubelet/{config,flags,kubelet}.go` and `util/apiclient/wait.go`): the
//! kubelet's configuration file, its `kubeadm-flags.env` (what the kubeadm systemd
//! drop-in passes as `$KUBELET_KUBEADM_ARGS`), its (re)start through the init system,
//! and the wait for its health endpoint.

use crate::app::util::pkiutil;
use std::path::Path;
use std::time::{Duration, Instant};

pub const KUBELET_DIR: &str = "/var/lib/kubelet";

/// The flags kubeadm records for this node (upstream `buildKubeletArgs`): the runtime
/// endpoint, and the node name when it is not the hostname the kubelet would use.
pub fn flags(cri_socket: &str, node_name: &str) -> Vec<String> {
    let mut f = vec![format!("--container-runtime-endpoint={cri_socket}")];
    if node_name != component_base::hostname() {
        f.push(format!("--hostname-override={node_name}"));
    }
    f
}

/// Writes `config.yaml` and `kubeadm-flags.env` under `/var/lib/kubelet`.
pub fn write_files(config_yaml: &str, flags: &[String]) -> Result<(), String> {
    let env = Path::new(KUBELET_DIR).join("kubeadm-flags.env");
    println!(
        "[kubelet-start] Writing kubelet environment file with flags to file {:?}",
        env.display().to_string()
    );
    pkiutil::write_file(
        &env,
        &format!("KUBELET_KUBEADM_ARGS=\"{}\"\n", flags.join(" ")),
        0o644,
    )?;
    let config = Path::new(KUBELET_DIR).join("config.yaml");
    println!(
        "[kubelet-start] Writing kubelet configuration to file {:?}",
        config.display().to_string()
    );
    pkiutil::write_file(&config, config_yaml, 0o644)
}

/// Upstream's `TryStartKubelet`: restart it through systemd when there is one.
pub fn try_start() {
    println!("[kubelet-start] Starting the kubelet");
    let has_systemd = Path::new("/run/systemd/system").exists()
        && std::process::Command::new("systemctl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_systemd {
        println!(
            "[kubelet-start] No supported init system detected, won't make sure the kubelet is running properly."
        );
        return;
    }
    let run = |args: &[&str]| {
        std::process::Command::new("systemctl")
            .args(args)
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
                }
            })
    };
    if let Err(e) = run(&["daemon-reload"]).and_then(|()| run(&["restart", "kubelet"])) {
        println!("[kubelet-start] WARNING: unable to start the kubelet service: [{e}]");
        println!("[kubelet-start] Please ensure kubelet is reloaded and running manually.");
    }
}

/// A plain-HTTP `GET` answered 200 (the kubelet's healthz is HTTP on localhost).
pub fn http_ok(addr: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(a) = addr.parse::<std::net::SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

/// Waits up to 4 minutes for the kubelet's `/healthz` (its address from the kubelet
/// configuration), as upstream's `WaitForKubelet`.
pub async fn wait_healthy(config_yaml: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_saphyr::from_str(config_yaml).map_err(|e| format!("kubelet config: {e}"))?;
    let port = v["healthzPort"].as_u64().unwrap_or(10248);
    let host = v["healthzBindAddress"].as_str().unwrap_or("127.0.0.1");
    let url = format!("{host}:{port}");
    println!(
        "[kubelet-check] Waiting for a healthy kubelet at http://{url}/healthz. This can take up to 4m0s"
    );
    let start = Instant::now();
    while !http_ok(&url, "/healthz") {
        if start.elapsed() > Duration::from_secs(240) {
            return Err(format!(
                "The HTTP call equal to 'curl -sSL http://{url}/healthz' returned error: the kubelet is not healthy after 4m0s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "[kubelet-check] The kubelet is healthy after {}",
        apimachinery::duration::format_go(start.elapsed().as_nanos() as i64)
    );
    Ok(())
}

/// `kubeadm init phase kubelet-finalize enable-client-cert-rotation` (upstream
/// `phases/kubelet/kubelet-finalize.go`): once the kubelet keeps its client pair in
/// `/var/lib/kubelet/pki/kubelet-client-current.pem` (seeded from `kubelet.conf`'s
/// embedded one, then rotated), `kubelet.conf` names that file instead of embedding
/// a certificate that would expire unrotated.
pub fn enable_client_cert_rotation(kubelet_conf: &Path) -> Result<(), String> {
    let pem = Path::new(KUBELET_DIR).join("pki/kubelet-client-current.pem");
    if !pem.exists() {
        return Err(format!(
            "could not load the kubelet client certificate from {}: the kubelet has not stored it",
            pem.display()
        ));
    }
    println!(
        "[kubelet-finalize] Updating {:?} to point to a rotatable kubelet client certificate and key",
        kubelet_conf.display().to_string()
    );
    let text = std::fs::read_to_string(kubelet_conf)
        .map_err(|e| format!("{}: {e}", kubelet_conf.display()))?;
    let mut kc: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", kubelet_conf.display()))?;
    let Some(users) = kc["users"].as_array_mut() else {
        return Err(format!("{}: no users", kubelet_conf.display()));
    };
    for u in users {
        if let Some(user) = u["user"].as_object_mut() {
            user.remove("client-certificate-data");
            user.remove("client-key-data");
            user.insert(
                "client-certificate".into(),
                pem.display().to_string().into(),
            );
            user.insert("client-key".into(), pem.display().to_string().into());
        }
    }
    let yaml = serde_saphyr::to_string(&kc).map_err(|e| e.to_string())?;
    pkiutil::write_file(kubelet_conf, &yaml, 0o600)
}
