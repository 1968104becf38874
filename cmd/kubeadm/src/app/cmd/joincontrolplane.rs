//! `kubeadm join --control-plane` (upstream `cmd/phases/join/controlplaneprepare.go`,
//! `controlplanejoin.go` and `phases/etcd/local.go` `CreateStackedEtcdStaticPodManifestFile`):
//! before the kubelet starts, the shared CAs and keys come from the `kubeadm-certs`
//! Secret (`--certificate-key`), this node's own certificates, kubeconfigs and control
//! plane manifests are made from the cluster's `kubeadm-config`; after the kubelet has
//! joined, this node's etcd is added as a learner of the stacked etcd cluster, its static
//! Pod written with the whole membership and the learner promoted once in sync, and the
//! node is marked control-plane.

use crate::app::apis::kubeadm::{InitConfig, KUBERNETES_DIR};
use crate::app::phases::{
    certs, controlplane, copycerts, kubeconfig, markcontrolplane, uploadconfig,
};
use crate::app::preflight;
use crate::app::util::etcd;
use std::path::{Path, PathBuf};

pub struct ControlPlaneJoin {
    pub certificate_key: String,
    pub advertise_address: String,
    pub bind_port: u16,
    pub manifests_dir: PathBuf,
}

/// Ports a new control-plane instance needs, checked with the worker's preflight.
pub fn preflight(cp: &ControlPlaneJoin, ignore: &[String]) -> Result<(), String> {
    let findings = [cp.bind_port, 10259, 10257, 2379, 2380]
        .into_iter()
        .filter_map(preflight::port_open)
        .collect();
    preflight::report(findings, ignore)
}

/// This node's configuration: the cluster's, with this node's API endpoint.
pub async fn config(
    bootstrap: &kube::Client,
    cp: &ControlPlaneJoin,
    node: &str,
) -> Result<InitConfig, String> {
    let cluster = uploadconfig::fetch_cluster_configuration(bootstrap).await?;
    if cluster.control_plane_endpoint.is_empty() {
        return Err("unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address\n\nPlease ensure that:\n* The cluster has a stable controlPlaneEndpoint address.".into());
    }
    let mut cfg = InitConfig {
        cluster,
        ..Default::default()
    };
    cfg.init.local_api_endpoint.advertise_address = cp.advertise_address.clone();
    cfg.init.local_api_endpoint.bind_port = cp.bind_port;
    cfg.init.node_registration.name = node.to_string();
    cfg.validate()?;
    Ok(cfg)
}

/// Certificates, kubeconfigs and control-plane manifests, before the kubelet starts.
pub async fn prepare(
    bootstrap: &kube::Client,
    cfg: &InitConfig,
    cp: &ControlPlaneJoin,
    node: &str,
) -> Result<(), String> {
    println!(
        "[preflight] Running pre-flight checks before initializing the new control plane instance"
    );
    let dir = PathBuf::from(&cfg.cluster.certificates_dir);
    copycerts::download(bootstrap, cfg, &dir, &cp.certificate_key).await?;
    certs::create_all(cfg, node, &dir)?;
    println!(
        "[certs] Valid certificates and keys now exist in {:?}",
        dir.display().to_string()
    );
    let out = Path::new(KUBERNETES_DIR);
    for spec in kubeconfig::specs(node) {
        if matches!(
            spec.file,
            "admin.conf" | "controller-manager.conf" | "scheduler.conf"
        ) {
            kubeconfig::create(cfg, &dir, out, &spec)?;
        }
    }
    controlplane::create(cfg, "all", &cp.manifests_dir)
}

/// The stacked etcd member and the control-plane marks, once the kubelet runs.
pub async fn join(cfg: &InitConfig, cp: &ControlPlaneJoin, node: &str) -> Result<(), String> {
    let admin = crate::admin_client(&Path::new(KUBERNETES_DIR).join("admin.conf")).await?;
    if cfg.local_etcd() {
        // A learner first: the existing members keep their quorum while the new one
        // starts and catches up, and it votes only once promoted.
        let certs = Path::new(&cfg.cluster.certificates_dir);
        let (mut client, _) = etcd::from_cluster(&admin, certs).await?;
        let peer = etcd::peer_url(&cfg.init.local_api_endpoint.advertise_address);
        let (learner, initial) = etcd::add_learner(&mut client, &peer, node).await?;
        println!("[etcd] Creating static Pod manifest for {:?}", "etcd");
        controlplane::write(
            &cp.manifests_dir,
            "etcd",
            &controlplane::etcd_member(cfg, node, Some(&initial)),
        )?;
        println!(
            "[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s"
        );
        if let Some(id) = learner {
            etcd::promote(&mut client, id).await?;
        }
    }
    markcontrolplane::run(&admin, cfg, node).await?;
    let ca = std::fs::read_to_string(Path::new(&cfg.cluster.certificates_dir).join("ca.crt"))
        .map_err(|e| format!("ca.crt: {e}"))?;
    crate::app::phases::waitcontrolplane::wait(cfg, &ca).await
}
