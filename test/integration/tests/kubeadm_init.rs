//! `kubeadm init` for real, on a "machine" (its own network namespace, mount namespace
//! with `/etc/kubernetes`, `/var/lib/kubelet`, `/var/lib/etcd`, and its own containerd
//! holding the images build/build-images.py makes from the binaries under test): every
//! phase from preflight to the add-ons, the control plane running as static Pods the
//! kubelet (started as kubeadm's systemd drop-in would) runs from
//! `/etc/kubernetes/manifests` — stacked etcd with TLS, the apiserver, controller-manager
//! and scheduler — then a Ready control-plane node with its mirror pods, kube-proxy and
//! the cluster DNS add-on answering a pod's lookup of `kubernetes.default` through the
//! `kube-dns` Service. kubelet.conf ends up naming the rotated client certificate, and
//! `kubeadm reset` leaves no file behind.

use integration_tests::kubeadm::{build_cluster_images, kubectl, kubelet_args};
use integration_tests::machine::{Killed, Machine};
use integration_tests::netns::NetNs;
use integration_tests::node::TestContainerd;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const NODE_IP: &str = "10.231.0.11";

#[test]
fn kubeadm_init_brings_up_a_control_plane_node() {
    let ns = NetNs::new("kinit");
    ns.enter();
    // The machine's network: one interface with the node address, the default route.
    NetNs::add_uplink(&[&format!("{NODE_IP}/24")]);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(init());
}

thread_local! {
    /// The kubelet's log, shown when a wait fails.
    static KUBELET_LOG: std::cell::RefCell<Option<std::path::PathBuf>> = const { std::cell::RefCell::new(None) };
}

fn kubelet_log_tail() -> String {
    let text = KUBELET_LOG
        .with(|l| l.borrow().clone())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && !l.contains("(Connect)"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => {
                if std::env::var_os("KUBEADM_TEST_PAUSE").is_some() {
                    eprintln!("{what}: {e}");
                    std::thread::sleep(Duration::from_secs(900));
                }
                panic!("{what}: {e}\nkubelet: {}", kubelet_log_tail())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn get_json(kubeconfig: &Path, args: &[&str]) -> Result<Value, String> {
    let (ok, out) = kubectl(kubeconfig, &[args, &["-o", "json"]].concat());
    if !ok {
        return Err(out);
    }
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

fn condition(obj: &Value, kind: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

async fn init() {
    let work = tempfile::tempdir().unwrap();
    let images = build_cluster_images(work.path());
    let machine = Machine::new();
    let containerd = TestContainerd::start_launched(|| machine.cmd("containerd"), 0).await;
    containerd.import(&images);
    let config = work.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: {NODE_IP}\nnodeRegistration:\n  name: m1\n  criSocket: {}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P256\nnetworking:\n  podSubnet: 10.244.0.0/16\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nevictionHard:\n  memory.available: 100Mi\n  nodefs.available: 1%\n",
            containerd.endpoint()
        ),
    )
    .unwrap();

    let start = Instant::now();
    let mut init = machine
        .cmd(integration_tests::binary("kubeadm"))
        .arg("init")
        .arg(format!("--config={}", config.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The kubelet starts once kubeadm has written its configuration, as systemd's
    // restart would start it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !machine.var().join("config.yaml").exists() {
        if let Some(st) = init.try_wait().unwrap() {
            let o = init.wait_with_output().unwrap();
            panic!(
                "kubeadm init exited with {st}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "kubeadm init wrote no kubelet configuration"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kubelet_log = work.path().join("kubelet.log");
    KUBELET_LOG.with(|l| *l.borrow_mut() = Some(kubelet_log.clone()));
    let kubelet = Killed(
        machine
            .cmd(integration_tests::binary("kubelet"))
            .args(kubelet_args(
                &machine.var(),
                &[&format!("--node-ip={NODE_IP}")],
            ))
            .stderr(std::fs::File::create(&kubelet_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let o = tokio::task::spawn_blocking(move || init.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let log = || std::fs::read_to_string(&kubelet_log).unwrap_or_default();
    assert!(
        o.status.success(),
        "kubeadm init: {out}{}\nkubelet: {}\ncontainerd: {}",
        String::from_utf8_lossy(&o.stderr),
        log(),
        containerd.log()
    );
    let init_secs = start.elapsed().as_secs_f64();
    for line in [
        "[init] Using Kubernetes version: v1.35.0",
        "[preflight] Running pre-flight checks",
        "[certs] Generating \"ca\" certificate and key",
        "[kubeconfig] Writing \"admin.conf\" kubeconfig file",
        "[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\"",
        "[control-plane] Creating static Pod manifest for \"kube-apiserver\"",
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"",
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\"",
        "[control-plane-check] kube-apiserver is healthy after",
        "[control-plane-check] kube-controller-manager is healthy after",
        "[control-plane-check] kube-scheduler is healthy after",
        "[mark-control-plane] Marking the node m1 as control-plane",
        "[kubelet-finalize] Updating \"/etc/kubernetes/kubelet.conf\" to point to a rotatable kubelet client certificate and key",
        "[addons] Applied essential addon: CoreDNS",
        "[addons] Applied essential addon: kube-proxy",
        "Your Kubernetes control-plane has initialized successfully!",
        &format!("kubeadm join {NODE_IP}:6443 --token "),
        "--discovery-token-ca-cert-hash sha256:",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let kubelet_conf = std::fs::read_to_string(machine.etc().join("kubelet.conf")).unwrap();
    assert!(
        kubelet_conf
            .contains("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem")
            && !kubelet_conf.contains("client-certificate-data"),
        "{kubelet_conf}"
    );

    let admin = machine.etc().join("admin.conf");
    // A Ready control-plane node, tainted, with its mirror pods running.
    wait_for("node m1 Ready", 120, || {
        let n = get_json(&admin, &["get", "node", "m1"])?;
        condition(&n, "Ready")
            .then_some(())
            .ok_or_else(|| n["status"].to_string())
    })
    .await;
    let ready_secs = start.elapsed().as_secs_f64();
    let node = get_json(&admin, &["get", "node", "m1"]).unwrap();
    assert!(
        node["spec"]["taints"]
            .to_string()
            .contains("node-role.kubernetes.io/control-plane"),
        "{node}"
    );
    // Node IPAM (the controller-manager's --allocate-node-cidrs, from podSubnet).
    wait_for("m1's pod CIDR", 60, || {
        let n = get_json(&admin, &["get", "node", "m1"])?;
        (n["spec"]["podCIDR"] == "10.244.0.0/24")
            .then_some(())
            .ok_or_else(|| n["spec"].to_string())
    })
    .await;
    for pod in [
        "etcd-m1",
        "kube-apiserver-m1",
        "kube-controller-manager-m1",
        "kube-scheduler-m1",
    ] {
        wait_for(&format!("{pod} Ready"), 120, || {
            let p = get_json(&admin, &["-n", "kube-system", "get", "pod", pod])?;
            condition(&p, "Ready")
                .then_some(())
                .ok_or_else(|| p["status"].to_string())
        })
        .await;
    }
    // The add-ons: kube-proxy on the node, both DNS replicas available.
    wait_for("kube-proxy ready", 120, || {
        let d = get_json(
            &admin,
            &["-n", "kube-system", "get", "daemonset", "kube-proxy"],
        )?;
        (d["status"]["numberReady"] == 1)
            .then_some(())
            .ok_or_else(|| {
                let (_, logs) = kubectl(
                    &admin,
                    &[
                        "-n",
                        "kube-system",
                        "logs",
                        "-l",
                        "k8s-app=kube-proxy",
                        "--tail=20",
                    ],
                );
                let (_, kcm) = kubectl(
                    &admin,
                    &[
                        "-n",
                        "kube-system",
                        "logs",
                        "kube-controller-manager-m1",
                        "--tail=60",
                    ],
                );
                let (_, cms) = kubectl(&admin, &["get", "configmaps", "-A"]);
                format!("{}\n{logs}\n{kcm}\n{cms}", d["status"])
            })
    })
    .await;
    wait_for("coredns available", 120, || {
        let d = get_json(
            &admin,
            &["-n", "kube-system", "get", "deployment", "coredns"],
        )?;
        (d["status"]["availableReplicas"] == 2)
            .then_some(())
            .ok_or_else(|| {
                let (_, logs) = kubectl(
                    &admin,
                    &[
                        "-n",
                        "kube-system",
                        "logs",
                        "-l",
                        "k8s-app=kube-dns",
                        "--tail=20",
                    ],
                );
                let (_, pods) = kubectl(
                    &admin,
                    &[
                        "-n",
                        "kube-system",
                        "get",
                        "pods",
                        "-l",
                        "k8s-app=kube-dns",
                        "-o",
                        "yaml",
                    ],
                );
                format!("{}\n{logs}\n{pods}", d["status"])
            })
    })
    .await;
    // A pod resolves the API's Service name through kube-dns (10.96.0.10, reached
    // through kube-proxy's rules).
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "lookup", "namespace": "default"},
        "spec": {"restartPolicy": "Never",
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
            "containers": [{"name": "c", "image": integration_tests::node::BUSYBOX,
                "command": ["sh", "-c", "nslookup kubernetes.default.svc.cluster.local 10.96.0.10"]}]}});
    let manifest = work.path().join("lookup.json");
    std::fs::write(&manifest, pod.to_string()).unwrap();
    let (ok, o) = kubectl(&admin, &["create", "-f", &manifest.display().to_string()]);
    assert!(ok, "{o}");
    let phase = wait_for("lookup pod finished", 120, || {
        let p = get_json(&admin, &["get", "pod", "lookup"])?;
        match p["status"]["phase"].as_str() {
            Some(ph @ ("Succeeded" | "Failed")) => Ok(ph.to_string()),
            _ => Err(p["status"].to_string()),
        }
    })
    .await;
    let (_, logs) = kubectl(&admin, &["logs", "lookup"]);
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(logs.contains("10.96.0.1"), "{logs}");
    println!(
        "kubeadm init took {init_secs:.1}s; the control-plane node was Ready {ready_secs:.1}s after init started"
    );

    // kubeadm reset (the kubelet stopped first: no systemd here) leaves no file behind.
    drop(kubelet);
    let o = machine
        .cmd(integration_tests::binary("kubeadm"))
        .args(["reset", "--force", "--cri-socket", &containerd.endpoint()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for dir in ["etc-kubernetes", "var-lib-kubelet", "var-lib-etcd"] {
        assert_eq!(
            Machine::files_under(&machine.root.path().join(dir)),
            Vec::<String>::new(),
            "{out}"
        );
    }
    assert!(containerd.running_tasks().is_empty(), "{out}");
}
