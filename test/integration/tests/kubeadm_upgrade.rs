//! `kubeadm upgrade plan|apply` on a control-plane node made by `kubeadm init`, for
//! real: three image sets built from the binaries under test — v1.35.0 (what init
//! runs), v1.35.1 (the next release) and v1.35.2 (a release whose kube-apiserver exits
//! at once).
//! - `upgrade plan v1.35.1` prints upstream's tables and the apply command;
//! - `upgrade apply` refuses a version above kubeadm's own without `--force` and a
//!   version two minors ahead even with it, changing nothing;
//! - `upgrade apply v1.35.1 --force -y`: each control-plane static Pod moves to the new
//!   image (etcd's manifest is unchanged and skipped), the stored ClusterConfiguration
//!   and the kube-proxy and DNS add-ons follow, and a running workload is never
//!   restarted;
//! - `upgrade apply --config` (v1.35.2, 45 s manifest timeout): the broken API server
//!   never comes back, kubeadm puts the v1.35.1 manifest back, waits for the old API
//!   server and fails saying so; the cluster and the workload go on.

use integration_tests::kubeadm::{
    build_images_as, condition, get_json, kubeadm_with_kubelet, kubectl, wait_ok as wait_for,
};
use integration_tests::machine::Machine;
use integration_tests::netns::NetNs;
use integration_tests::node::TestContainerd;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const IP: &str = "10.232.0.11";

#[test]
fn kubeadm_upgrade_apply_moves_the_control_plane_and_rolls_back_a_failure() {
    let ns = NetNs::new("kupg");
    ns.enter();
    NetNs::add_uplink(&[&format!("{IP}/24")]);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(upgrade(&ns));
}

/// Image sets v1.35.1 (the binaries under test) and v1.35.2 (its kube-apiserver is
/// `false`), each as an archive.
fn release_images(work: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let bin = integration_tests::binary("kube-apiserver");
    let bin_dir = bin.parent().unwrap();
    let next = build_images_as(&work.join("v1.35.1"), bin_dir, "v1.35.1");
    let broken_bin = work.join("broken-bin");
    std::fs::create_dir_all(&broken_bin).unwrap();
    for c in [
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "cluster-dns",
        "cluster-network",
        "metrics-server",
        "csi-hostpath",
    ] {
        std::os::unix::fs::symlink(bin_dir.join(c), broken_bin.join(c)).unwrap();
    }
    std::fs::copy("/bin/false", broken_bin.join("kube-apiserver")).unwrap();
    let broken = build_images_as(&work.join("v1.35.2"), &broken_bin, "v1.35.2");
    (next, broken)
}

/// The image of a manifest's (or a Pod's) first container.
fn image_of(pod: &Value) -> String {
    pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The `image:` of a static Pod manifest (one container), from its YAML.
fn manifest_image(m: &Machine, component: &str) -> String {
    let text =
        std::fs::read_to_string(m.etc().join(format!("manifests/{component}.yaml"))).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("image: "))
        .unwrap_or_else(|| panic!("{component}.yaml: {text}"))
        .trim_matches('"')
        .to_string()
}

/// The kubernetesVersion of the ClusterConfiguration stored in `kubeadm-config`.
fn assert_stored_version(admin: &Path, version: &str) {
    let cm = get_json(
        admin,
        &["-n", "kube-system", "get", "configmap", "kubeadm-config"],
    )
    .unwrap();
    assert!(
        cm["data"]["ClusterConfiguration"]
            .as_str()
            .unwrap()
            .contains(&format!("kubernetesVersion: {version}")),
        "{cm}"
    );
}

async fn upgrade(ns: &NetNs) {
    let work = tempfile::tempdir().unwrap();
    let current = integration_tests::kubeadm::build_cluster_images(&work.path().join("v1.35.0"));
    let (next, broken) = release_images(work.path());
    let m = Machine::new_host(Some(&ns.name), Some("u1"));
    let c = TestContainerd::start_with_cni_dir(|| m.cmd("containerd"), "/etc/cni/net.d").await;
    for archive in [&current, &next, &broken] {
        c.import(archive);
    }
    let config = work.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: {IP}\nnodeRegistration:\n  name: u1\n  criSocket: {}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P256\nnetworking:\n  podSubnet: 10.245.0.0/16\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nevictionHard:\n  memory.available: 100Mi\n  nodefs.available: 0%\n",
            c.endpoint()
        ),
    )
    .unwrap();
    let log = work.path().join("kubelet.log");
    let node_ip = format!("--node-ip={IP}");
    let (_, kubelet) = kubeadm_with_kubelet(
        &m,
        &["init".into(), format!("--config={}", config.display())],
        &[&node_ip],
        &log,
    )
    .await;
    let admin = m.etc().join("admin.conf");
    let addon = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cluster/addons/network/cluster-network.yaml")
        .display()
        .to_string();
    let (ok, o) = kubectl(&admin, &["apply", "-f", &addon]);
    assert!(ok, "{o}");
    let control_plane_ready = |admin: &Path| {
        for component in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let p = get_json(
                admin,
                &[
                    "-n",
                    "kube-system",
                    "get",
                    "pod",
                    &format!("{component}-u1"),
                ],
            )?;
            if !condition(&p, "Ready") {
                return Err(format!("{component}: {}", p["status"]));
            }
        }
        Ok(())
    };
    wait_for("the control plane Ready", 120, || {
        control_plane_ready(&admin)
    })
    .await;

    // The ServiceAccount admission plugin refuses pods until the controller-manager has
    // made the namespace's `default` account (upstream's e2e framework waits for it too).
    wait_for("the default ServiceAccount", 60, || {
        get_json(
            &admin,
            &["get", "serviceaccount", "default", "-n", "default"],
        )
        .map(|_| ())
    })
    .await;

    // A workload that must live through every upgrade.
    let app = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
            "containers": [{"name": "c", "image": integration_tests::node::BUSYBOX, "command": ["sleep", "3600"]}]}});
    let f = work.path().join("app.json");
    std::fs::write(&f, app.to_string()).unwrap();
    let (ok, o) = kubectl(&admin, &["create", "-f", &f.display().to_string()]);
    assert!(ok, "{o}");
    let app_running = |admin: &Path| {
        let p = get_json(admin, &["get", "pod", "app"])?;
        if p["status"]["phase"] != "Running" {
            return Err(p["status"].to_string());
        }
        Ok((
            p["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            p["status"]["containerStatuses"][0]["restartCount"].clone(),
        ))
    };
    let (uid, restarts) = wait_for("the workload running", 120, || app_running(&admin)).await;
    assert_eq!(restarts, 0);

    let kubeadm = |args: &[&str]| {
        let o = m
            .cmd(integration_tests::binary("kubeadm"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    // upgrade plan.
    let (ok, out, err) = kubeadm(&["upgrade", "plan", "v1.35.1"]);
    assert!(ok, "{out}{err}");
    for line in [
        "[upgrade/versions] Cluster version: v1.35.0",
        "[upgrade/versions] kubeadm version: v1.35.0",
        "[upgrade/versions] Target version: v1.35.1",
        "COMPONENT                 NODE   CURRENT   TARGET",
        "kube-apiserver            u1     v1.35.0   v1.35.1",
        "etcd                      u1     3.6.5-0   3.6.5-0",
        "\tkubeadm upgrade apply v1.35.1",
        "Note: Before you can perform this upgrade, you have to update kubeadm to v1.35.1.",
        "kubelet.config.k8s.io     v1beta1           v1beta1             no",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // The skew policy: above kubeadm needs --force; two minors ahead never goes.
    let (ok, out, err) = kubeadm(&["upgrade", "apply", "v1.35.1", "-y"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("Specified version to upgrade to \"v1.35.1\" is higher than the kubeadm version \"v1.35.0\"")
            && err.contains("Can be bypassed if you pass the --force flag"),
        "{err}"
    );
    let (ok, _, err) = kubeadm(&["upgrade", "apply", "v1.37.0", "--force"]);
    assert!(
        !ok && err.contains("is too high; kubeadm can upgrade only 1 minor version at a time"),
        "{err}"
    );
    assert_eq!(
        manifest_image(&m, "kube-apiserver"),
        "registry.k8s.io/kube-apiserver:v1.35.0"
    );

    // v1.35.0 -> v1.35.1.
    let start = Instant::now();
    let (ok, out, err) = kubeadm(&["upgrade", "apply", "v1.35.1", "--force"]);
    let upgrade_secs = start.elapsed().as_secs_f64();
    assert!(ok, "{out}{err}\nkubelet: {}", log_tail(&log));
    for line in [
        "[upgrade/versions] Cluster version: v1.35.0",
        "[upgrade/preflight] Found 1 potential version compatibility errors but skipping since the --force flag is set",
        "[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"v1.35.1\" (timeout: 5m0s)...",
        "[upgrade/staticpods] Current and new manifests of etcd are equal, skipping upgrade",
        "[upgrade/staticpods] Renewing apiserver certificate",
        "[upgrade/staticpods] Component \"kube-apiserver\" upgraded successfully!",
        "[upgrade/staticpods] Component \"kube-controller-manager\" upgraded successfully!",
        "[upgrade/staticpods] Component \"kube-scheduler\" upgraded successfully!",
        "[addons] Applied essential addon: kube-proxy",
        "[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"v1.35.1\".",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    for component in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert_eq!(
            manifest_image(&m, component),
            format!("registry.k8s.io/{component}:v1.35.1")
        );
        let p = get_json(
            &admin,
            &[
                "-n",
                "kube-system",
                "get",
                "pod",
                &format!("{component}-u1"),
            ],
        )
        .unwrap();
        assert_eq!(image_of(&p), format!("registry.k8s.io/{component}:v1.35.1"));
    }
    assert_stored_version(&admin, "v1.35.1");
    wait_for("kube-proxy running v1.35.1", 120, || {
        let pods = get_json(
            &admin,
            &[
                "-n",
                "kube-system",
                "get",
                "pods",
                "-l",
                "k8s-app=kube-proxy",
            ],
        )?;
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let upgraded = items.len() == 1
            && image_of(&items[0]) == "registry.k8s.io/kube-proxy:v1.35.1"
            && condition(&items[0], "Ready");
        upgraded
            .then_some(())
            .ok_or_else(|| pods["items"].to_string())
    })
    .await;
    let kubelet_config = std::fs::read_to_string(m.var().join("config.yaml")).unwrap();
    assert!(
        kubelet_config.contains("cgroupDriver: cgroupfs"),
        "{kubelet_config}"
    );
    assert_eq!(app_running(&admin).unwrap(), (uid.clone(), 0.into()));

    // v1.35.1 -> v1.35.2, whose API server never starts: rolled back.
    let upgrade_config = work.path().join("upgrade.yaml");
    std::fs::write(
        &upgrade_config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply:\n  kubernetesVersion: v1.35.2\n  forceUpgrade: true\ntimeouts:\n  upgradeManifests: 45s\n",
    )
    .unwrap();
    let start = Instant::now();
    let (ok, out, err) = kubeadm(&[
        "upgrade",
        "apply",
        "--config",
        &upgrade_config.display().to_string(),
    ]);
    let rollback_secs = start.elapsed().as_secs_f64();
    assert!(!ok, "{out}");
    assert!(
        out.contains("[upgrade/staticpods] Rolling back the static Pod manifest of \"kube-apiserver\"")
            && err.contains("couldn't upgrade control plane. kubeadm has tried to recover everything into the earlier state.")
            && err.contains("static Pod hash for component kube-apiserver on Node u1 did not change"),
        "{out}{err}"
    );
    assert_eq!(
        manifest_image(&m, "kube-apiserver"),
        "registry.k8s.io/kube-apiserver:v1.35.1"
    );
    wait_for("the v1.35.1 control plane Ready again", 120, || {
        control_plane_ready(&admin).map_err(|e| format!("{e}\nkubelet: {}", log_tail(&log)))
    })
    .await;
    let p = get_json(
        &admin,
        &["-n", "kube-system", "get", "pod", "kube-apiserver-u1"],
    )
    .unwrap();
    assert_eq!(image_of(&p), "registry.k8s.io/kube-apiserver:v1.35.1");
    assert_stored_version(&admin, "v1.35.1");
    assert_eq!(app_running(&admin).unwrap(), (uid, 0.into()));
    println!(
        "kubeadm upgrade apply v1.35.0 -> v1.35.1: {upgrade_secs:.1}s; a failed upgrade rolled back in {rollback_secs:.1}s"
    );

    drop(kubelet);
    integration_tests::kubeadm::reset_leaves_nothing(&m, &c.endpoint());
}

/// The kubelet log's last lines, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
