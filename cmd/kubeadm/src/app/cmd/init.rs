//! `kubeadm init` (upstream `cmd/kubeadm/app/cmd/init.go` and `cmd/phases/init`): the
//! phases in upstream's order — preflight, certs, kubeconfig, etcd, control-plane,
//! kubelet-start, wait-control-plane, upload-config, upload-certs, mark-control-plane,
//! bootstrap-token, kubelet-finalize, addon — and the `kubeadm join` line to print.

use crate::app::apis::kubeadm::{InitConfig, KUBERNETES_DIR};
use crate::app::cmd::token;
use crate::app::phases::{
    addons, bootstraptoken, certs, controlplane, copycerts, kubeconfig, kubelet, markcontrolplane,
    uploadconfig, waitcontrolplane,
};
use crate::app::preflight;
use std::path::{Path, PathBuf};

pub struct InitOptions {
    pub cfg: InitConfig,
    pub node: String,
    pub cert_dir: PathBuf,
    pub manifests_dir: PathBuf,
    pub ignore_preflight_errors: Vec<String>,
    pub skip_token_print: bool,
    pub upload_certs: bool,
}

async fn run_preflight(o: &InitOptions) -> Result<(), String> {
    println!("[preflight] Running pre-flight checks");
    let cfg = &o.cfg;
    let mut findings = Vec::new();
    // /proc/self belongs to the effective user.
    let euid = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").map_err(|e| format!("/proc/self: {e}"))?,
    );
    findings.extend(preflight::is_privileged_user(euid));
    findings.extend(preflight::host_swap());
    let mut ports = vec![cfg.init.local_api_endpoint.bind_port, 10259, 10257, 10250];
    if cfg.local_etcd() {
        ports.extend([2379, 2380]);
    }
    findings.extend(ports.into_iter().filter_map(preflight::port_open));
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        findings.extend(preflight::file_available(
            &o.manifests_dir.join(format!("{name}.yaml")),
        ));
    }
    if let Some(local) = &cfg.cluster.etcd.local {
        findings.extend(preflight::dir_available(Path::new(&local.data_dir)));
    } else if cfg.local_etcd() {
        findings.extend(preflight::dir_available(Path::new("/var/lib/etcd")));
    }
    println!(
        "[preflight] Checking that the images required for setting up a Kubernetes cluster are present"
    );
    findings.extend(preflight::missing_images(cfg.cri_socket(), &images(cfg)).await?);
    let mut ignore = o.ignore_preflight_errors.clone();
    ignore.extend(
        cfg.init
            .node_registration
            .ignore_preflight_errors
            .iter()
            .cloned(),
    );
    preflight::report(findings, &ignore)
}

/// Every image the control plane and the add-ons run (`kubeadm config images list`).
pub fn images(cfg: &InitConfig) -> Vec<String> {
    let mut v: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "cluster-dns",
    ]
    .iter()
    .map(|c| cfg.image(c))
    .collect();
    if cfg.local_etcd() {
        v.push(controlplane::etcd_image(cfg));
    }
    v
}

pub async fn run(o: &InitOptions) -> Result<(), String> {
    let cfg = &o.cfg;
    println!(
        "[init] Using Kubernetes version: {}",
        cfg.cluster.kubernetes_version
    );
    run_preflight(o).await?;
    certs::create_all(cfg, &o.node, &o.cert_dir)?;
    let kubeconfig_dir = Path::new(KUBERNETES_DIR);
    kubeconfig::create_all(cfg, &o.node, &o.cert_dir, kubeconfig_dir)?;
    if cfg.local_etcd() {
        controlplane::create_etcd(cfg, &o.node, &o.manifests_dir)?;
    }
    controlplane::create(cfg, "all", &o.manifests_dir)?;
    let kubelet_config =
        serde_saphyr::to_string(&cfg.kubelet_configuration()?).map_err(|e| e.to_string())?;
    kubelet::write_files(&kubelet_config, &kubelet::flags(cfg.cri_socket(), &o.node))?;
    kubelet::try_start();
    println!(
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory {:?}",
        o.manifests_dir.display().to_string()
    );
    kubelet::wait_healthy(&kubelet_config).await?;
    let ca = std::fs::read_to_string(o.cert_dir.join("ca.crt"))
        .map_err(|e| format!("{}: {e}", o.cert_dir.join("ca.crt").display()))?;
    waitcontrolplane::wait(cfg, &ca).await?;
    let admin_conf = kubeconfig_dir.join("admin.conf");
    let client = crate::admin_client(&admin_conf).await?;
    uploadconfig::upload_kubeadm_config(&client, cfg).await?;
    uploadconfig::upload_kubelet_config(&client, cfg).await?;
    let certificate_key = if o.upload_certs {
        Some(copycerts::upload_certs(&client, cfg).await?)
    } else {
        println!("[upload-certs] Skipping phase. Please see --upload-certs");
        None
    };
    markcontrolplane::run(&client, cfg, &o.node).await?;
    let tokens = bootstraptoken::run(&client, cfg, &ca).await?;
    kubelet::enable_client_cert_rotation(&kubeconfig_dir.join("kubelet.conf"))?;
    addons::dns::ensure(&client, cfg).await?;
    addons::proxy::ensure(&client, cfg).await?;
    println!("\nYour Kubernetes control-plane has initialized successfully!\n");
    println!(
        "To start using your cluster, you need to run the following as a regular user:\n\n  mkdir -p $HOME/.kube\n  sudo cp -i {0} $HOME/.kube/config\n  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n\nAlternatively, if you are the root user, you can run:\n\n  export KUBECONFIG={0}\n",
        admin_conf.display()
    );
    println!(
        "You should now deploy a pod network to the cluster.\nRun \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:\n  https://kubernetes.io/docs/concepts/cluster-administration/addons/\n"
    );
    let token = match (o.skip_token_print, tokens.first()) {
        (false, Some(t)) => t.clone(),
        _ => "<value withheld>".into(),
    };
    let join = token::join_command(&cfg.control_plane_url(), &token, &ca)?;
    let join_lines = |extra: &str| {
        join.replace(
            " --discovery-token-ca-cert-hash",
            " \\\n\t--discovery-token-ca-cert-hash",
        ) + extra
    };
    // Control-plane nodes join through a stable endpoint, as upstream requires.
    if !cfg.cluster.control_plane_endpoint.is_empty() {
        match &certificate_key {
            Some(key) => println!(
                "You can now join any number of control-plane nodes running the following command on each as root:\n\n{}\n\nPlease note that the certificate-key gives access to cluster sensitive data, keep it secret!\nAs a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use\n\"kubeadm init phase upload-certs --upload-certs\" to reload certs afterward.\n",
                join_lines(&format!(" \\\n\t--control-plane --certificate-key {key}"))
            ),
            None => println!(
                "You can now join any number of control-plane nodes by running 'kubeadm init phase upload-certs --upload-certs' on this node for a certificate key, then on each as root:\n\n{}\n",
                join_lines(" \\\n\t--control-plane --certificate-key <key>")
            ),
        }
    }
    println!(
        "Then you can join any number of worker nodes by running the following on each as root:\n\n{}\n",
        join_lines("")
    );
    Ok(())
}
