//! `kubeadm reset` (upstream `cmd/kubeadm/app/cmd/reset.go` and `phases/reset`): undoes
//! what `kubeadm init`/`join` did on this machine — the kubelet stopped, every pod
//! sandbox (and its containers) removed through the CRI, mounts under
//! `/var/lib/kubelet` unmounted, the stacked etcd member removed from the cluster and its
//! data deleted, the manifests, the PKI, the
//! kubelet's state and the kubeconfig files deleted, and (beyond upstream, which leaves
//! them to the administrator) the KUBE-* iptables chains and kube-proxy's nftables
//! tables removed. As upstream, CNI configuration and `$HOME/.kube/config` are left.

use crate::app::apis::kubeadm::KUBERNETES_DIR;
use crate::app::phases::kubelet::KUBELET_DIR;
use crate::app::util::{etcd, netfilter};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct ResetOptions {
    pub force: bool,
    pub cri_socket: String,
    pub cert_dir: PathBuf,
}

/// Mount points under `dir`, deepest first (upstream unmounts them all).
pub fn mounts_under(mountinfo: &str, dir: &str) -> Vec<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut out: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.len()));
    out.dedup();
    out
}

/// Removes what a directory holds, keeping the directory.
fn clean_dir(dir: &Path) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        let r = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| format!("removing {}: {e}", p.display()))?;
    }
    Ok(())
}

fn stop_kubelet() {
    let systemd = Path::new("/run/systemd/system").exists();
    if !systemd {
        println!(
            "[reset] No supported init system detected, won't make sure the kubelet is stopped; please ensure kubelet is stopped manually"
        );
        return;
    }
    println!("[reset] Stopping the kubelet service");
    match std::process::Command::new("systemctl")
        .args(["stop", "kubelet"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => println!(
            "[reset] The kubelet service could not be stopped by kubeadm: [{}]\n[reset] Please ensure kubelet is stopped manually",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => println!(
            "[reset] The kubelet service could not be stopped by kubeadm: [{e}]\n[reset] Please ensure kubelet is stopped manually"
        ),
    }
}

/// The address this node's etcd advertises, from its static Pod's annotation.
fn etcd_advertise_address(manifest: &str) -> Option<String> {
    let pod: serde_json::Value = serde_saphyr::from_str(manifest).ok()?;
    let url = pod["metadata"]["annotations"][etcd::ADVERTISE_CLIENT_URLS].as_str()?;
    let host = url.strip_prefix("https://")?.rsplit_once(':')?.0;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// The etcd data directory: the static Pod's `etcd-data` hostPath (upstream
/// `getEtcdDataDir`), `/var/lib/etcd` without one.
fn etcd_data_dir(manifest: &str) -> String {
    let pod: serde_json::Value = serde_saphyr::from_str(manifest).unwrap_or_default();
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "etcd-data")
        .and_then(|v| v["hostPath"]["path"].as_str())
        .unwrap_or("/var/lib/etcd")
        .to_string()
}

/// Removes this node's member from the stacked etcd cluster, through the cluster's
/// apiserver (admin.conf) to find the other members; given up after 30 s.
async fn remove_etcd_member(manifest: &Path, cert_dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| e.to_string())?;
    let address = etcd_advertise_address(&text).ok_or_else(|| {
        format!(
            "no {} annotation in {}",
            etcd::ADVERTISE_CLIENT_URLS,
            manifest.display()
        )
    })?;
    let admin_conf = Path::new(KUBERNETES_DIR).join("admin.conf");
    let remove = async {
        let admin = crate::client(&admin_conf).await?;
        etcd::remove_member(&admin, cert_dir, &address).await
    };
    tokio::time::timeout(Duration::from_secs(30), remove)
        .await
        .map_err(|_| "the cluster did not answer within 30s".to_string())?
}

/// Stops and removes every pod sandbox the runtime has (their containers go with them).
async fn remove_containers(cri_socket: &str) -> Result<usize, String> {
    use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
    use k8s_cri::v1::{ListPodSandboxRequest, RemovePodSandboxRequest, StopPodSandboxRequest};
    let channel = component_base::grpc::unix_channel(cri_socket, Duration::from_secs(30))?;
    let mut rt = RuntimeServiceClient::new(channel);
    let sandboxes = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .map_err(|e| format!("failed to list running pods using CRI: {}", e.message()))?
        .into_inner()
        .items;
    for sb in &sandboxes {
        let id = sb.id.clone();
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .map_err(|e| format!("failed to stop running pod {id}: {}", e.message()))?;
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .map_err(|e| format!("failed to remove running pod {id}: {}", e.message()))?;
    }
    Ok(sandboxes.len())
}

pub async fn run(o: &ResetOptions) -> Result<(), String> {
    if !o.force {
        println!(
            "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted."
        );
        print!("[reset] Are you sure you want to proceed? [y/N]: ");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Err("aborted reset operation".into());
        }
    }
    println!("[preflight] Running pre-flight checks");
    let manifests = Path::new(KUBERNETES_DIR).join("manifests");
    // Stacked etcd: this member leaves the cluster (the others keep their quorum), then
    // its data goes.
    let etcd_manifest = manifests.join("etcd.yaml");
    if etcd_manifest.exists() {
        if let Err(e) = remove_etcd_member(&etcd_manifest, &o.cert_dir).await {
            println!(
                "[reset] WARNING: Failed to remove etcd member: {e}, please manually remove this etcd member using etcdctl"
            );
        }
        let text = std::fs::read_to_string(&etcd_manifest).unwrap_or_default();
        let data = PathBuf::from(etcd_data_dir(&text));
        clean_dir(&data)?;
        println!(
            "[reset] Deleted contents of the etcd data directory: {}",
            data.display()
        );
    } else {
        println!("[reset] No etcd config found. Assuming external etcd");
        println!("[reset] Please, manually reset etcd to prevent further issues");
    }
    stop_kubelet();
    println!("[reset] Removing all Kubernetes-managed containers");
    match remove_containers(&o.cri_socket).await {
        Ok(_) => {}
        Err(e) => println!("[reset] WARNING: {e}"),
    }
    // After the containers: kube-proxy is gone and cannot program them again.
    println!(
        "[reset] Removing the packet-filtering rules Kubernetes programmed (iptables KUBE-* chains, nftables table kube-proxy)"
    );
    if let Err(e) = netfilter::clean() {
        println!("[reset] WARNING: {e}");
    }
    println!("[reset] Unmounting mounted directories in {KUBELET_DIR:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for m in mounts_under(&mountinfo, KUBELET_DIR) {
        let out = std::process::Command::new("umount").arg(&m).output();
        if !out.is_ok_and(|o| o.status.success()) {
            println!("[reset] Failed to unmount mounted directory in {KUBELET_DIR}: {m}");
        }
    }
    // kubeadm's own backups from upgrades go too (upstream keeps /etc/kubernetes/tmp).
    let dirs = [
        manifests.clone(),
        PathBuf::from(KUBELET_DIR),
        o.cert_dir.clone(),
        Path::new(KUBERNETES_DIR).join("tmp"),
    ];
    println!(
        "[reset] Deleting contents of directories: [{}]",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for d in &dirs {
        clean_dir(d)?;
    }
    let files: Vec<PathBuf> = [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "bootstrap-kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ]
    .iter()
    .map(|f| Path::new(KUBERNETES_DIR).join(f))
    .collect();
    println!(
        "[reset] Deleting files: [{}]",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for f in &files {
        if let Err(e) = std::fs::remove_file(f)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(format!("removing {}: {e}", f.display()));
        }
    }
    println!(
        "\nThe reset process does not perform cleanup of CNI plugin configuration\nand kubeconfig files.\n\nFor information on how to perform this cleanup manually, please see:\n    https://k8s.io/docs/reference/setup-tools/kubeadm/kubeadm-reset/\n"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etcd_address_comes_from_the_static_pod() {
        let m = "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://[fd00::3]:2379\n  name: etcd\n";
        assert_eq!(etcd_advertise_address(m).as_deref(), Some("fd00::3"));
        let m = m.replace("[fd00::3]", "10.0.0.3");
        assert_eq!(etcd_advertise_address(&m).as_deref(), Some("10.0.0.3"));
        assert_eq!(etcd_advertise_address("kind: Pod\n"), None);
        assert_eq!(etcd_data_dir("kind: Pod\n"), "/var/lib/etcd");
        let m = "kind: Pod\nspec:\n  volumes:\n  - name: etcd-certs\n    hostPath:\n      path: /etc/kubernetes/pki/etcd\n  - name: etcd-data\n    hostPath:\n      path: /data/etcd\n";
        assert_eq!(etcd_data_dir(m), "/data/etcd");
    }

    #[test]
    fn mounts_under_a_directory_come_deepest_first() {
        let info = "tmpfs /var/lib/kubelet/pods/a/volumes/kubernetes.io~projected/x tmpfs rw 0 0\n\
                    /dev/sda1 /var/lib/kubelet ext4 rw 0 0\n\
                    /dev/sda1 /var/lib/kubelet/pods/a/volume-subpaths/v/c/0 ext4 rw 0 0\n\
                    proc /proc proc rw 0 0\n\
                    tmpfs /var/lib/kubeletx tmpfs rw 0 0\n";
        assert_eq!(
            mounts_under(info, "/var/lib/kubelet"),
            [
                "/var/lib/kubelet/pods/a/volumes/kubernetes.io~projected/x",
                "/var/lib/kubelet/pods/a/volume-subpaths/v/c/0",
            ]
        );
    }
}
