//! Pre-flight checks (upstream `cmd/kubeadm/app/preflight/checks.go`): each check has
//! upstream's name, so `--ignore-preflight-errors=<name>,...` (or `all`) turns its
//! error into a warning; the rest stop `kubeadm init` before it changes anything.

use std::path::Path;

pub struct Finding {
    pub check: String,
    pub message: String,
    /// Upstream's checks that only warn: printed, never fatal.
    pub warning: bool,
}

pub fn finding(check: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        message: message.into(),
        warning: false,
    }
}

/// Upstream's `SwapCheck`: swap in use is worth a warning (the kubelet refuses it
/// unless `failSwapOn` is false). `swaps`: the text of `/proc/swaps`.
pub fn swap(swaps: &str) -> Option<Finding> {
    (swaps.lines().filter(|l| !l.trim().is_empty()).count() > 1).then(|| Finding {
        warning: true,
        ..finding(
            "Swap",
            "swap is supported for cgroup v2 only. The kubelet must be properly configured to use swap. Please refer to https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory, or disable swap on the node",
        )
    })
}

/// The swap check on this host.
pub fn host_swap() -> Option<Finding> {
    swap(&std::fs::read_to_string("/proc/swaps").ok()?)
}

/// Upstream's `FileAvailable--<path with / as ->` name.
pub fn file_check_name(kind: &str, path: &str) -> String {
    format!("{kind}--{}", path.trim_start_matches('/').replace('/', "-"))
}

pub fn is_privileged_user(euid: u32) -> Option<Finding> {
    (euid != 0).then(|| finding("IsPrivilegedUser", "user is not running as root"))
}

pub fn port_open(port: u16) -> Option<Finding> {
    std::net::TcpListener::bind(("0.0.0.0", port))
        .is_err()
        .then(|| finding(format!("Port-{port}"), format!("Port {port} is in use")))
}

pub fn file_available(path: &Path) -> Option<Finding> {
    let p = path.display().to_string();
    path.exists().then(|| {
        finding(
            file_check_name("FileAvailable", &p),
            format!("{p} already exists"),
        )
    })
}

pub fn dir_available(path: &Path) -> Option<Finding> {
    let p = path.display().to_string();
    let non_empty = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    non_empty.then(|| {
        finding(
            file_check_name("DirAvailable", &p),
            format!("{p} is not empty"),
        )
    })
}

/// Splits findings into errors and ignored ones (`ignore`: check names, any case, or
/// `all`), and renders the errors as upstream prints them.
pub fn report(findings: Vec<Finding>, ignore: &[String]) -> Result<(), String> {
    let ignored = |c: &str| {
        ignore
            .iter()
            .any(|i| i.eq_ignore_ascii_case("all") || i.eq_ignore_ascii_case(c))
    };
    let mut errors = Vec::new();
    for f in findings {
        if f.warning || ignored(&f.check) {
            println!("\t[WARNING {}]: {}", f.check, f.message);
        } else {
            errors.push(format!("\t[ERROR {}]: {}", f.check, f.message));
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(format!(
        "[preflight] Some fatal errors occurred:\n{}\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`",
        errors.join("\n")
    ))
}

/// The images the node must have, asked of the runtime over CRI. kubeadm's images are
/// built by this repository (`build/build-images.py`) and imported, not pulled: a pull
/// from the public registry would run upstream's binaries instead.
pub async fn missing_images(cri_socket: &str, images: &[String]) -> Result<Vec<Finding>, String> {
    use k8s_cri::v1::image_service_client::ImageServiceClient;
    use k8s_cri::v1::{ImageSpec, ImageStatusRequest};
    let channel =
        component_base::grpc::unix_channel(cri_socket, std::time::Duration::from_secs(10))?;
    let mut svc = ImageServiceClient::new(channel);
    let mut out = Vec::new();
    for image in images {
        let status = svc
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(|e| {
                format!(
                    "[preflight] container runtime is not running: {cri_socket}: {}",
                    e.message()
                )
            })?
            .into_inner();
        if status.image.is_none() {
            out.push(finding(
                "ImagePull",
                format!("image {image} is not present on this node: build the images with build/build-images.py and import them (ctr -n k8s.io images import kubernetes-images.tar)"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_in_use_warns() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(swap(header).is_none());
        let f = swap(&format!("{header}/swapfile file 1048572 0 -2\n")).unwrap();
        assert!(f.warning && f.check == "Swap");
        assert!(report(vec![f], &[]).is_ok(), "a warning is not fatal");
    }

    #[test]
    fn ignored_checks_warn_and_others_fail() {
        let f = || {
            vec![
                finding("Port-6443", "Port 6443 is in use"),
                finding(
                    file_check_name("FileAvailable", "/etc/kubernetes/manifests/etcd.yaml"),
                    "x",
                ),
            ]
        };
        let err = report(f(), &["port-6443".into()]).unwrap_err();
        assert!(err.contains("[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]: x"));
        assert!(!err.contains("Port-6443"));
        assert!(report(f(), &["all".into()]).is_ok());
        assert!(report(vec![], &[]).is_ok());
    }
}
