//! `kubeadm init phase kubeconfig` (upstream `cmd/kubeadm/app/phases/kubeconfig`): the
//! kubeconfig files under `/etc/kubernetes`, each with a client certificate the cluster
//! CA signs and the CA embedded: `admin.conf` (group `kubeadm:cluster-admins`),
//! `super-admin.conf` (`system:masters`), `controller-manager.conf`, `scheduler.conf`
//! and this node's `kubelet.conf`.

use crate::app::apis::kubeadm::InitConfig;
use crate::app::util::pkiutil::{self, CertSpec};
use base64::Engine;
use std::path::Path;

pub struct KubeconfigSpec {
    pub file: &'static str,
    pub user: String,
    pub organizations: Vec<String>,
    /// The local API endpoint rather than the control plane endpoint.
    pub local: bool,
}

/// The files `kubeadm init` writes, in upstream's order.
pub fn specs(node: &str) -> Vec<KubeconfigSpec> {
    vec![
        KubeconfigSpec {
            file: "admin.conf",
            user: "kubernetes-admin".into(),
            organizations: vec!["kubeadm:cluster-admins".into()],
            local: false,
        },
        KubeconfigSpec {
            file: "super-admin.conf",
            user: "kubernetes-super-admin".into(),
            organizations: vec!["system:masters".into()],
            local: false,
        },
        KubeconfigSpec {
            file: "kubelet.conf",
            user: format!("system:node:{node}"),
            organizations: vec!["system:nodes".into()],
            local: false,
        },
        KubeconfigSpec {
            file: "controller-manager.conf",
            user: "system:kube-controller-manager".into(),
            organizations: vec![],
            local: true,
        },
        KubeconfigSpec {
            file: "scheduler.conf",
            user: "system:kube-scheduler".into(),
            organizations: vec![],
            local: true,
        },
    ]
}

/// A kubeconfig with embedded credentials, as upstream's `CreateWithCerts`.
pub fn render(
    cluster: &str,
    server: &str,
    ca_pem: &str,
    user: &str,
    cert: &str,
    key: &str,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: {cluster}\ncontexts:\n- context:\n    cluster: {cluster}\n    user: {user}\n  name: {user}@{cluster}\ncurrent-context: {user}@{cluster}\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(ca_pem),
        b64(cert),
        b64(key)
    )
}

/// Writes one kubeconfig file unless it exists.
pub fn create(
    cfg: &InitConfig,
    cert_dir: &Path,
    out_dir: &Path,
    spec: &KubeconfigSpec,
) -> Result<(), String> {
    let path = out_dir.join(spec.file);
    if path.exists() {
        println!(
            "[kubeconfig] Using existing kubeconfig file: {:?}",
            path.display().to_string()
        );
        return Ok(());
    }
    let (ca_pem, ca_key) = pkiutil::read_pair(cert_dir, "ca")
        .map_err(|e| format!("couldn't load the ca certificate authority: {e}"))?;
    let key = pkiutil::generate_key(&cfg.cluster.encryption_algorithm)?;
    let cert = pkiutil::new_signed(
        &CertSpec {
            common_name: spec.user.clone(),
            organizations: spec.organizations.clone(),
            client: true,
            ..Default::default()
        },
        cfg.cert_validity(),
        &key,
        &ca_pem,
        &ca_key,
    )?;
    let server = if spec.local {
        cfg.local_url()
    } else {
        cfg.control_plane_url()
    };
    println!("[kubeconfig] Writing {:?} kubeconfig file", spec.file);
    pkiutil::write_file(
        &path,
        &render(
            &cfg.cluster.cluster_name,
            &server,
            &ca_pem,
            &spec.user,
            &cert,
            &key.serialize_pem(),
        ),
        0o600,
    )
}

/// `kubeadm init phase kubeconfig all`.
pub fn create_all(
    cfg: &InitConfig,
    node: &str,
    cert_dir: &Path,
    out_dir: &Path,
) -> Result<(), String> {
    println!(
        "[kubeconfig] Using kubeconfig folder {:?}",
        out_dir.display().to_string()
    );
    for s in specs(node) {
        create(cfg, cert_dir, out_dir, &s)?;
    }
    Ok(())
}

/// The client certificate embedded in a kubeconfig file (for expiration checks).
pub fn embedded_certificate(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-certificate-data:"))
        .ok_or_else(|| format!("{}: no embedded client certificate", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
