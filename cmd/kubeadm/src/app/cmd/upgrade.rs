//! `kubeadm upgrade plan|apply|node` (upstream `cmd/kubeadm/app/cmd/upgrade/{plan,apply,
//! node}.go` and `phases/upgrade`): the cluster's configuration read back from the
//! `kubeadm-config` ConfigMap and this node's part of it (its name from the kubelet's
//! client certificate, its API endpoint from its kube-apiserver manifest, its runtime
//! from `kubeadm-flags.env`); the version skew policy; the static Pod control plane
//! upgraded component by component with rollback; then the stored configuration, the
//! kubelet configuration and the add-ons moved to the new version.
//!
//! kubeadm never fetches a version from the internet: without a version argument the
//! target is kubeadm's own version.

use crate::app::apis::kubeadm::{InitConfig, KUBERNETES_DIR, UpgradeConfiguration};
use crate::app::cmd::{certs::table, renew};
use crate::app::phases::upgrade::policy::{self, KUBEADM_VERSION, Version};
use crate::app::phases::upgrade::staticpods::{self, COMPONENTS, Upgrade};
use crate::app::phases::{addons, kubelet, uploadconfig};
use crate::app::preflight::{self, Finding};
use crate::app::util::pkiutil;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `kubeadm upgrade apply|node` were asked to do (flags over `--config`).
pub struct UpgradeOptions {
    pub version: Option<String>,
    pub yes: bool,
    pub force: bool,
    pub certificate_renewal: bool,
    pub etcd_upgrade: bool,
    pub allow_experimental: bool,
    pub allow_rc: bool,
    pub ignore_preflight_errors: Vec<String>,
    pub timeout: Duration,
    pub manifests_dir: PathBuf,
}

impl UpgradeOptions {
    /// Options from an UpgradeConfiguration's `apply` section (`node` for `upgrade node`).
    pub fn from_config(c: &UpgradeConfiguration, node: bool) -> Result<Self, String> {
        let (renew, etcd, ignore) = match node {
            true => (
                c.node.certificate_renewal,
                c.node.etcd_upgrade,
                &c.node.ignore_preflight_errors,
            ),
            false => (
                c.apply.certificate_renewal,
                c.apply.etcd_upgrade,
                &c.apply.ignore_preflight_errors,
            ),
        };
        Ok(UpgradeOptions {
            version: Some(c.apply.kubernetes_version.clone()).filter(|v| !v.is_empty()),
            yes: false,
            force: c.apply.force_upgrade,
            certificate_renewal: renew.unwrap_or(true),
            etcd_upgrade: etcd.unwrap_or(true),
            allow_experimental: c.apply.allow_experimental_upgrades,
            allow_rc: c.apply.allow_rc_upgrades,
            ignore_preflight_errors: ignore.clone(),
            timeout: c.upgrade_manifests_timeout()?,
            manifests_dir: Path::new(KUBERNETES_DIR).join("manifests"),
        })
    }
}

/// `system:node:<name>` of the kubelet's client certificate (upstream
/// `getNodeNameFromKubeletConfig`): the certificate file kubelet.conf names, or the one
/// it embeds.
fn node_name() -> Result<String, String> {
    let conf = Path::new(KUBERNETES_DIR).join("kubelet.conf");
    let text = std::fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
    let pem = match text
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-certificate:"))
    {
        Some(file) => {
            std::fs::read_to_string(file.trim()).map_err(|e| format!("{}: {e}", file.trim()))?
        }
        None => crate::app::phases::kubeconfig::embedded_certificate(&conf)?,
    };
    let cert = pem
        .find("-----BEGIN CERTIFICATE-----")
        .map(|i| &pem[i..])
        .ok_or_else(|| format!("no client certificate for {}", conf.display()))?;
    let cn = pkiutil::spec_of(cert)?.common_name;
    cn.strip_prefix("system:node:")
        .map(String::from)
        .ok_or_else(|| format!("the kubelet's client certificate is for {cn:?}, not a node"))
}

/// This node's API endpoint from its kube-apiserver manifest; None on a worker.
fn local_api_endpoint(manifests_dir: &Path) -> Result<Option<(String, u16)>, String> {
    let path = manifests_dir.join("kube-apiserver.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let pod: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let endpoint = pod["metadata"]["annotations"]
        ["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]
        .as_str()
        .ok_or_else(|| format!("{}: no advertise-address annotation", path.display()))?;
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| format!("{}: bad endpoint {endpoint:?}", path.display()))?;
    let port = port
        .parse()
        .map_err(|_| format!("bad port in {endpoint:?}"))?;
    Ok(Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    )))
}

/// The runtime endpoint kubeadm recorded for the kubelet.
fn cri_socket() -> String {
    let env = Path::new(kubelet::KUBELET_DIR).join("kubeadm-flags.env");
    std::fs::read_to_string(env)
        .unwrap_or_default()
        .split(['"', ' '])
        .find_map(|w| w.strip_prefix("--container-runtime-endpoint="))
        .map(String::from)
        .unwrap_or_default()
}

/// The cluster's configuration with this node's part; whether it is a control-plane node.
async fn load(client: &kube::Client, manifests_dir: &Path) -> Result<(InitConfig, bool), String> {
    println!(
        "[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    );
    println!(
        "[upgrade] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it."
    );
    let mut cfg = InitConfig {
        cluster: uploadconfig::fetch_cluster_configuration(client).await?,
        ..Default::default()
    };
    let kubelet_yaml = uploadconfig::fetch_kubelet_configuration(client).await?;
    cfg.kubelet = Some(
        serde_saphyr::from_str(&kubelet_yaml)
            .map_err(|e| format!("the cluster's KubeletConfiguration: {e}"))?,
    );
    cfg.init.node_registration.name = node_name()?;
    cfg.init.node_registration.cri_socket = cri_socket();
    let endpoint = local_api_endpoint(manifests_dir)?;
    if let Some((address, port)) = &endpoint {
        cfg.init.local_api_endpoint.advertise_address = address.clone();
        cfg.init.local_api_endpoint.bind_port = *port;
    }
    Ok((cfg, endpoint.is_some()))
}

fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Upstream's upgrade health checks that need no Job: every control-plane node Ready
/// and this node's static Pod manifests in place.
async fn health_checks(
    client: &kube::Client,
    manifests_dir: &Path,
    cfg: &InitConfig,
) -> Result<Vec<Finding>, String> {
    println!("[upgrade] Running cluster health checks");
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels("node-role.kubernetes.io/control-plane"))
        .await
        .map_err(|e| format!("listing the control-plane nodes: {e}"))?;
    let mut out = Vec::new();
    let not_ready: Vec<String> = nodes
        .items
        .iter()
        .filter(|n| !is_ready(n))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if !not_ready.is_empty() {
        out.push(preflight::finding(
            "ControlPlaneNodesReady",
            format!(
                "there are NotReady control-planes in the cluster: [{}]",
                not_ready.join(" ")
            ),
        ));
    }
    let missing: Vec<String> = COMPONENTS
        .iter()
        .filter(|c| **c != "etcd" || cfg.local_etcd())
        .map(|c| manifests_dir.join(format!("{c}.yaml")))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        out.push(preflight::finding(
            "StaticPodManifest",
            format!(
                "the control plane manifests are missing: [{}]",
                missing.join(" ")
            ),
        ));
    }
    Ok(out)
}

fn confirm() -> Result<(), String> {
    use std::io::Write;
    print!("[upgrade] Are you sure you want to proceed? [y/N]: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err("won't proceed; the user didn't answer (Y|y) in order to continue".into()),
    }
}

/// The kubelets' versions, for the skew policy.
async fn kubelet_versions(client: &kube::Client) -> Vec<(String, String)> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let v = n.status?.node_info?.kubelet_version;
            Some((n.metadata.name?, v))
        })
        .collect()
}

/// The version skew policy for moving the cluster from `cluster` to `new`.
async fn skew(
    client: &kube::Client,
    cluster: &Version,
    new: &Version,
    o: &UpgradeOptions,
) -> Result<policy::SkewErrors, String> {
    let kubelets: Vec<Version> = kubelet_versions(client)
        .await
        .iter()
        .filter_map(|(_, v)| Version::parse(v).ok())
        .collect();
    Ok(policy::enforce(
        cluster,
        &Version::parse(KUBEADM_VERSION)?,
        &kubelets,
        new,
        o.allow_experimental,
        o.allow_rc,
    ))
}

/// The kubelet configuration file of this node, from the cluster's (backed up first).
fn write_kubelet_config(cfg: &InitConfig) -> Result<(), String> {
    let path = Path::new(kubelet::KUBELET_DIR).join("config.yaml");
    let stamp = staticpods::timestamp();
    let backup = Path::new(KUBERNETES_DIR)
        .join("tmp")
        .join(format!("kubeadm-kubelet-config-{stamp}"));
    std::fs::create_dir_all(&backup).map_err(|e| format!("{}: {e}", backup.display()))?;
    if path.exists() {
        println!(
            "[upgrade] Backing up kubelet config file to {}",
            backup.join("config.yaml").display()
        );
        std::fs::copy(&path, backup.join("config.yaml"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "[kubelet-start] Writing kubelet configuration to file {:?}",
        path.display().to_string()
    );
    let yaml = serde_saphyr::to_string(&cfg.kubelet_configuration()?).map_err(|e| e.to_string())?;
    pkiutil::write_file(&path, &yaml, 0o644)
}

/// The control plane of this node moved to `cfg`'s version.
async fn upgrade_control_plane(
    client: &kube::Client,
    cfg: &InitConfig,
    o: &UpgradeOptions,
) -> Result<(), String> {
    println!(
        "[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version {:?} (timeout: {})...",
        cfg.cluster.kubernetes_version,
        apimachinery::duration::format_go(o.timeout.as_nanos() as i64)
    );
    Upgrade {
        cfg,
        client,
        node: cfg.init.node_registration.name.clone(),
        manifests_dir: o.manifests_dir.clone(),
        cert_dir: PathBuf::from(&cfg.cluster.certificates_dir),
        renew_certs: o.certificate_renewal,
        etcd_upgrade: o.etcd_upgrade,
        timeout: o.timeout,
    }
    .run()
    .await?;
    if o.certificate_renewal {
        for name in ["admin.conf", "super-admin.conf"] {
            if Path::new(KUBERNETES_DIR).join(name).exists() {
                println!("[upgrade/staticpods] Renewing {name} certificate");
                let certs = Path::new(&cfg.cluster.certificates_dir);
                renew::renew(cfg, name, certs, Path::new(KUBERNETES_DIR))?;
            }
        }
    }
    println!(
        "[upgrade/control-plane] The control plane instance for this node was successfully upgraded!"
    );
    Ok(())
}

/// `kubeadm upgrade apply [version]`.
pub async fn apply(client: &kube::Client, o: &UpgradeOptions) -> Result<(), String> {
    let (mut cfg, control_plane) = load(client, &o.manifests_dir).await?;
    if !control_plane {
        return Err("'kubeadm upgrade apply' must be run on a control-plane node (this node has no kube-apiserver manifest); use 'kubeadm upgrade node' on workers".into());
    }
    println!("[upgrade/preflight] Running preflight checks");
    let euid = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").map_err(|e| format!("/proc/self: {e}"))?,
    );
    let mut findings: Vec<Finding> = preflight::is_privileged_user(euid).into_iter().collect();
    findings.extend(health_checks(client, &o.manifests_dir, &cfg).await?);
    preflight::report(findings, &o.ignore_preflight_errors)?;
    let target = o
        .version
        .clone()
        .ok_or("missing one or more required arguments: [version]")?;
    let new = Version::parse(&target)?;
    let cluster = Version::parse(&cfg.cluster.kubernetes_version)?;
    println!(
        "[upgrade/preflight] You have chosen to upgrade the cluster version to {:?}",
        new.to_string()
    );
    println!("[upgrade/versions] Cluster version: {cluster}");
    println!("[upgrade/versions] kubeadm version: {KUBEADM_VERSION}");
    let skew = skew(client, &cluster, &new, o).await?;
    if let Some(e) = skew.blocking(o.force) {
        return Err(e);
    }
    if !skew.skippable.is_empty() {
        println!(
            "[upgrade/preflight] Found {} potential version compatibility errors but skipping since the --force flag is set: \n\n{}",
            skew.skippable.len(),
            skew.skippable
                .iter()
                .map(|e| format!("\t- {e}\n"))
                .collect::<String>()
        );
    }
    if !o.yes {
        confirm()?;
    }
    cfg.cluster.kubernetes_version = new.to_string();
    println!(
        "[upgrade/preflight] Checking that the images required for setting up a Kubernetes cluster are present"
    );
    let images = crate::app::cmd::init::images(&cfg);
    let missing = preflight::missing_images(cfg.cri_socket(), &images).await?;
    preflight::report(missing, &o.ignore_preflight_errors)?;
    upgrade_control_plane(client, &cfg, o).await?;
    uploadconfig::upload_kubeadm_config(client, &cfg).await?;
    uploadconfig::upload_kubelet_config(client, &cfg).await?;
    write_kubelet_config(&cfg)?;
    addons::dns::ensure(client, &cfg).await?;
    addons::proxy::ensure(client, &cfg).await?;
    println!(
        "\n[upgrade] SUCCESS! A control plane node of your cluster was upgraded to {:?}.\n\n[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order.",
        cfg.cluster.kubernetes_version
    );
    Ok(())
}

/// `kubeadm upgrade node`: another control-plane node follows the cluster's version;
/// every node gets the cluster's kubelet configuration.
pub async fn node(client: &kube::Client, o: &UpgradeOptions) -> Result<(), String> {
    let (cfg, control_plane) = load(client, &o.manifests_dir).await?;
    println!("[upgrade/preflight] Running pre-flight checks");
    if control_plane {
        let missing =
            preflight::missing_images(cfg.cri_socket(), &crate::app::cmd::init::images(&cfg))
                .await?;
        preflight::report(missing, &o.ignore_preflight_errors)?;
        upgrade_control_plane(client, &cfg, o).await?;
    } else {
        println!("[upgrade/control-plane] Skipping phase. Not a control plane node.");
    }
    write_kubelet_config(&cfg)?;
    println!(
        "[upgrade] The configuration for this node was successfully upgraded!\n[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager."
    );
    Ok(())
}

/// The tag of an image reference (`registry/name:tag`).
fn tag(image: &str) -> String {
    image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

/// `kubeadm upgrade plan [version]`: what each component runs now and what it would run.
pub async fn plan(
    client: &kube::Client,
    version: Option<String>,
    o: &UpgradeOptions,
) -> Result<(), String> {
    let (cfg, _) = load(client, &o.manifests_dir).await?;
    println!("[preflight] Running pre-flight checks.");
    let findings = health_checks(client, &o.manifests_dir, &cfg).await?;
    preflight::report(findings, &o.ignore_preflight_errors)?;
    let target = Version::parse(version.as_deref().unwrap_or(KUBEADM_VERSION))?;
    let cluster = Version::parse(&cfg.cluster.kubernetes_version)?;
    // A target nothing allows (or an unstable one without --allow-*-upgrades) is not
    // planned; one above kubeadm's own is, with the note to update kubeadm first.
    let skew = skew(client, &cluster, &target, o).await?;
    if let Some(e) = skew.blocking(true) {
        return Err(e);
    }
    if let Some(e) = policy::unstable_not_allowed(&target, o.allow_experimental, o.allow_rc) {
        return Err(e);
    }
    println!("[upgrade] Fetching available versions to upgrade to");
    println!("[upgrade/versions] Cluster version: {cluster}");
    println!("[upgrade/versions] kubeadm version: {KUBEADM_VERSION}");
    println!("[upgrade/versions] Target version: {target}");
    println!(
        "[upgrade/versions] Latest version in the v{}.{} series: {target}\n",
        target.major, target.minor
    );
    let mut next = cfg.clone();
    next.cluster.kubernetes_version = target.to_string();
    let header = |first: &str| {
        vec![
            first.to_string(),
            "NODE".into(),
            "CURRENT".into(),
            "TARGET".into(),
        ]
    };
    let kubelets = kubelet_versions(client).await;
    let mut rows = vec![header("COMPONENT")];
    let mut upgrade_needed = false;
    for (node, v) in &kubelets {
        upgrade_needed |= *v != target.to_string();
        rows.push(vec![
            "kubelet".into(),
            node.clone(),
            v.clone(),
            target.to_string(),
        ]);
    }
    println!(
        "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':\n{}",
        table(&rows)
    );
    let mut rows = vec![header("COMPONENT")];
    let pods = Api::<Pod>::namespaced(client.clone(), "kube-system");
    for component in COMPONENTS.iter().skip(1).chain(["etcd"].iter()) {
        if *component == "etcd" && !cfg.local_etcd() {
            continue;
        }
        let want = match *component {
            "etcd" => tag(&crate::app::phases::controlplane::etcd_image(&next)),
            c => tag(&next.image(c)),
        };
        let list = pods
            .list(
                &ListParams::default().labels(&format!("component={component},tier=control-plane")),
            )
            .await
            .map_err(|e| format!("listing the {component} Pods: {e}"))?;
        for p in list.items {
            let image = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let node = p.spec.and_then(|s| s.node_name).unwrap_or_default();
            upgrade_needed |= tag(&image) != want;
            rows.push(vec![component.to_string(), node, tag(&image), want.clone()]);
        }
        if *component == "kube-scheduler" {
            let ds = Api::<DaemonSet>::namespaced(client.clone(), "kube-system")
                .get("kube-proxy")
                .await
                .ok();
            let current = ds
                .and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone())
                .map(|i| tag(&i))
                .unwrap_or_default();
            upgrade_needed |= current != tag(&next.image("kube-proxy"));
            rows.push(vec![
                "kube-proxy".into(),
                String::new(),
                current,
                tag(&next.image("kube-proxy")),
            ]);
            let dns = Api::<Deployment>::namespaced(client.clone(), "kube-system")
                .get("coredns")
                .await
                .ok();
            let current = dns
                .and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone())
                .map(|i| tag(&i))
                .unwrap_or_default();
            upgrade_needed |= current != tag(&next.image("cluster-dns"));
            rows.push(vec![
                "CoreDNS".into(),
                String::new(),
                current,
                tag(&next.image("cluster-dns")),
            ]);
        }
    }
    if !upgrade_needed {
        println!("Awesome, you're up-to-date! Enjoy!");
        return Ok(());
    }
    println!(
        "Upgrade to the latest version in the v{}.{} series:\n\n{}",
        target.major,
        target.minor,
        table(&rows)
    );
    println!(
        "You can now apply the upgrade by executing the following command:\n\n\tkubeadm upgrade apply {target}\n"
    );
    if Version::parse(KUBEADM_VERSION)? != target {
        println!(
            "Note: Before you can perform this upgrade, you have to update kubeadm to {target}.\n"
        );
    }
    println!(
        "_____________________________________________________________________\n\nThe table below shows the current state of component configs as understood by this version of kubeadm.\nConfigs that have a \"yes\" mark in the \"MANUAL UPGRADE REQUIRED\" column require manual config upgrade or\nresetting to kubeadm defaults before a successful upgrade can be performed. The version to manually\nupgrade to is denoted in the \"PREFERRED VERSION\" column.\n\n{}_____________________________________________________________________\n",
        table(&[
            vec![
                "API GROUP".into(),
                "CURRENT VERSION".into(),
                "PREFERRED VERSION".into(),
                "MANUAL UPGRADE REQUIRED".into()
            ],
            vec![
                "kubeproxy.config.k8s.io".into(),
                "v1alpha1".into(),
                "v1alpha1".into(),
                "no".into()
            ],
            vec![
                "kubelet.config.k8s.io".into(),
                "v1beta1".into(),
                "v1beta1".into(),
                "no".into()
            ],
        ])
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(tag("registry.k8s.io/kube-apiserver:v1.35.1"), "v1.35.1");
        assert_eq!(tag("localhost:5000/etcd"), "");
        assert_eq!(tag("localhost:5000/etcd:3.6.5-0"), "3.6.5-0");
    }
}
