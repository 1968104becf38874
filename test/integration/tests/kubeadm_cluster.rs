//! A cluster of three machines made with `kubeadm init` and `kubeadm join`, for real. Each
//! machine is its own network namespace on a shared bridge (the "LAN") and its own mount
//! namespace (`/etc/kubernetes`, `/var/lib/kubelet`, `/var/lib/etcd`, `/etc/cni/net.d`,
//! `/var/lib/cni`), with its own containerd holding the images build/build-images.py
//! makes from the binaries under test.
//! - m1: `kubeadm init` runs every phase from preflight to the add-ons; the control
//!   plane runs as static Pods the kubelet (started as kubeadm's systemd drop-in would)
//!   runs from `/etc/kubernetes/manifests` — stacked etcd with TLS, the apiserver,
//!   controller-manager and scheduler; kubelet.conf ends up naming the rotated client
//!   certificate.
//! - The network add-on (cluster/addons/network) writes each node's CNI configuration
//!   and routes the pod CIDRs between the machines.
//! - m2: `kubeadm join` with the printed token and CA hash; its kubelet TLS-bootstraps.
//! - m3: `kubeadm join --control-plane --certificate-key` (init ran with `--upload-certs`):
//!   a second control-plane instance with a new stacked etcd member; both apiservers are
//!   in the `kubernetes` Service's endpoints.
//! - Both nodes Ready; kube-proxy, the network add-on and the DNS add-on run; a
//!   Deployment with a pod on each node answers through its Service by DNS name from a
//!   pod on m2.
//! - `kubeadm certs check-expiration` prints upstream's table; `kubeadm certs renew all`
//!   and a restart of the control plane: the apiserver serves its new certificate and
//!   new pods still run.
//! - m1 fails (its kubelet and apiserver killed): the `kubernetes` EndpointSlice loses
//!   m1 within the lease time, leader election moves to m3's controller-manager and
//!   scheduler, and new pods still schedule and start, all through the load balancer in
//!   front of both apiservers (`controlPlaneEndpoint`).
//! - `kubeadm reset` on each machine leaves none of kubeadm's files behind.

use integration_tests::kubeadm::{
    build_cluster_images, condition, get_json, kubeadm_with_kubelet, kubectl,
};
use integration_tests::machine::Machine;
use integration_tests::netns::{NetNs, run};
use integration_tests::node::TestContainerd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// From a pod: the Service's name resolved through kube-dns, retried for 30 s as the
/// add-ons settle (busybox's own resolver:
/// the static busybox's libc resolver needs NSS modules the image lacks), then 40
/// requests to it with `nc` (busybox's `wget` goes through that resolver too).
const RESOLVE_AND_FETCH: &str = "for i in $(seq 1 30); do ip=$(nslookup web.default.svc.cluster.local | awk '/^Address/ {a=$NF} END {print a}'); case \"$ip\" in *:*|'') sleep 1;; *) break;; esac; done; case \"$ip\" in *:*|'') exit 1;; esac; for i in $(seq 1 40); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip 80 | tail -n 1; done";

const M1_IP: &str = "10.231.0.11";
const M2_IP: &str = "10.231.0.12";
const M3_IP: &str = "10.231.0.13";
/// The load balancer in front of the apiservers (`controlPlaneEndpoint`), on the LAN.
const LB_IP: &str = "10.231.0.10";

/// Joins `machine`'s network namespace to the LAN bridge with address `ip`.
fn attach(machine: &NetNs, lan: &NetNs, ip: &str, port: &str) {
    let m = |args: &[&str]| {
        run(&[&["ip", "netns", "exec", machine.name.as_str()][..], args].concat());
    };
    m(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", &lan.name,
    ]);
    m(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    m(&["ip", "link", "set", "eth0", "up"]);
    m(&["ip", "route", "add", "default", "dev", "eth0"]);
    run(&[
        "ip", "netns", "exec", &lan.name, "ip", "link", "set", port, "master", "br0",
    ]);
    run(&[
        "ip", "netns", "exec", &lan.name, "ip", "link", "set", port, "up",
    ]);
}

#[test]
fn kubeadm_init_and_join_make_a_three_node_cluster() {
    let lan = NetNs::new("klan");
    run(&[
        "ip", "netns", "exec", &lan.name, "ip", "link", "add", "br0", "type", "bridge",
    ]);
    run(&[
        "ip", "netns", "exec", &lan.name, "ip", "link", "set", "br0", "up",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        &lan.name,
        "ip",
        "addr",
        "add",
        &format!("{LB_IP}/24"),
        "dev",
        "br0",
    ]);
    let api = |ip: &str| format!("{ip}:6443").parse().unwrap();
    integration_tests::tcplb::start_in(&lan.name, api(LB_IP), vec![api(M1_IP), api(M3_IP)]);
    let (n1, n2, n3) = (NetNs::new("km1"), NetNs::new("km2"), NetNs::new("km3"));
    attach(&n1, &lan, M1_IP, "m1p");
    attach(&n2, &lan, M2_IP, "m2p");
    attach(&n3, &lan, M3_IP, "m3p");
    // The test talks to the cluster from m1's network.
    n1.enter();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cluster(&n1, &n2, &n3));
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

/// Waits for an object's `Ready` condition (`-n kube-system` etc. in `what`).
async fn wait_ready(admin: &Path, what: &[&str]) {
    wait_for(&format!("{what:?} Ready"), 120, || {
        let o = get_json(admin, &[&["get"][..], what].concat())?;
        condition(&o, "Ready")
            .then_some(())
            .ok_or_else(|| o["status"].to_string())
    })
    .await;
}

/// Waits for a control-plane node's static pods (their mirror pods) to be Ready.
async fn wait_control_plane_pods(admin: &Path, node: &str) {
    for c in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        wait_ready(admin, &["pod", "-n", "kube-system", &format!("{c}-{node}")]).await;
    }
}

fn ready_count(admin: &Path, kind: &str, name: &str, field: &str, want: u64) -> Result<(), String> {
    let d = get_json(admin, &["-n", "kube-system", "get", kind, name])?;
    if d["status"][field] == want {
        return Ok(());
    }
    let (_, pods) = kubectl(admin, &["-n", "kube-system", "get", "pods", "-o", "wide"]);
    Err(format!("{}\n{pods}", d["status"]))
}

/// SIGKILLs the running containers of `images` (`name:` prefixes of their image
/// references) on a machine's containerd.
fn kill_tasks(c: &TestContainerd, images: &[&str]) {
    let (_, containers) = c.ctr(&["containers", "ls"]);
    for line in containers.lines() {
        if images.iter().any(|i| line.contains(i)) {
            let id = line.split_whitespace().next().unwrap();
            let _ = c.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
    }
}

/// The `kubeadm join ...` command printed after `after` in kubeadm init's output, as a
/// user would copy it (continuation lines joined); its arguments.
fn printed_join(out: &str, after: &str) -> Vec<String> {
    let from = out
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {out}"));
    let rest = &out[from..];
    let line = rest[rest.find("kubeadm join").unwrap()..]
        .replace("\\\n", " ")
        .lines()
        .next()
        .unwrap()
        .to_string();
    line.split_whitespace().skip(1).map(String::from).collect()
}

async fn cluster(n1: &NetNs, n2: &NetNs, n3: &NetNs) {
    let work = tempfile::tempdir().unwrap();
    let images = build_cluster_images(work.path());
    let m1 = Machine::new_host(Some(&n1.name), Some("m1"));
    let m2 = Machine::new_host(Some(&n2.name), Some("m2"));
    let m3 = Machine::new_host(Some(&n3.name), Some("m3"));
    let c1 = TestContainerd::start_with_cni_dir(|| m1.cmd("containerd"), "/etc/cni/net.d").await;
    let c2 = TestContainerd::start_with_cni_dir(|| m2.cmd("containerd"), "/etc/cni/net.d").await;
    let c3 = TestContainerd::start_with_cni_dir(|| m3.cmd("containerd"), "/etc/cni/net.d").await;
    c1.import(&images);
    c2.import(&images);
    c3.import(&images);
    let config = work.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: {M1_IP}\nnodeRegistration:\n  name: m1\n  criSocket: {}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: {LB_IP}:6443\nencryptionAlgorithm: ECDSA-P256\nnetworking:\n  podSubnet: 10.244.0.0/16\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nevictionHard:\n  memory.available: 100Mi\n  nodefs.available: 0%\n",
            c1.endpoint()
        ),
    )
    .unwrap();

    // m1: kubeadm init.
    let log1 = work.path().join("kubelet-m1.log");
    KUBELET_LOG.with(|l| *l.borrow_mut() = Some(log1.clone()));
    let start = Instant::now();
    let node_ip = format!("--node-ip={M1_IP}");
    let (out, kubelet1) = kubeadm_with_kubelet(
        &m1,
        &[
            "init".into(),
            format!("--config={}", config.display()),
            "--upload-certs".into(),
        ],
        &[&node_ip],
        &log1,
    )
    .await;
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
        &format!("kubeadm join {LB_IP}:6443 --token "),
        "--discovery-token-ca-cert-hash sha256:",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let kubelet_conf = std::fs::read_to_string(m1.etc().join("kubelet.conf")).unwrap();
    assert!(
        kubelet_conf
            .contains("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem")
            && !kubelet_conf.contains("client-certificate-data"),
        "{kubelet_conf}"
    );
    let admin = m1.etc().join("admin.conf");
    // The join lines kubeadm printed, as a user would copy them.
    let mut join = printed_join(&out, "join any number of worker nodes");
    let mut join_cp = printed_join(&out, "join any number of control-plane nodes");
    assert!(
        join_cp.contains(&"--control-plane".to_string())
            && join_cp.contains(&"--certificate-key".to_string()),
        "{out}"
    );
    assert!(
        out.contains("[upload-certs] Using certificate key:"),
        "{out}"
    );

    // The pod network.
    let addon = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cluster/addons/network/cluster-network.yaml")
        .display()
        .to_string();
    let (ok, o) = kubectl(&admin, &["apply", "-f", &addon]);
    assert!(ok, "{o}");
    wait_ready(&admin, &["node", "m1"]).await;
    let m1_ready_secs = start.elapsed().as_secs_f64();
    let node = get_json(&admin, &["get", "node", "m1"]).unwrap();
    assert!(
        node["spec"]["taints"]
            .to_string()
            .contains("node-role.kubernetes.io/control-plane"),
        "{node}"
    );
    wait_control_plane_pods(&admin, "m1").await;

    // m2: kubeadm join with the printed line.
    let log2 = work.path().join("kubelet-m2.log");
    join.extend([
        "--node-name".into(),
        "m2".into(),
        "--cri-socket".into(),
        c2.endpoint(),
    ]);
    let join_start = Instant::now();
    let node_ip = format!("--node-ip={M2_IP}");
    let (out, kubelet2) = kubeadm_with_kubelet(&m2, &join, &[&node_ip], &log2).await;
    assert!(out.contains("This node has joined the cluster"), "{out}");
    wait_ready(&admin, &["node", "m2"]).await;
    let join_secs = join_start.elapsed().as_secs_f64();

    // m3: a second control-plane instance (certificates from kubeadm-certs, a new
    // stacked etcd member, its own apiserver, controller-manager and scheduler).
    let log3 = work.path().join("kubelet-m3.log");
    join_cp.extend([
        "--node-name".into(),
        "m3".into(),
        "--cri-socket".into(),
        c3.endpoint(),
        "--apiserver-advertise-address".into(),
        M3_IP.into(),
    ]);
    let node_ip = format!("--node-ip={M3_IP}");
    let cp_start = Instant::now();
    let (out, kubelet3) = kubeadm_with_kubelet(&m3, &join_cp, &[&node_ip], &log3).await;
    assert!(
        out.contains("[download-certs] Downloading the certificates in Secret \"kubeadm-certs\"")
            && out.contains(&format!(
                "[etcd] Adding etcd member as learner: https://{M3_IP}:2380"
            ))
            && out.contains("[etcd] Promoted the learner member")
            && out.contains("a new control plane instance was created"),
        "{out}"
    );
    wait_control_plane_pods(&admin, "m3").await;
    wait_ready(&admin, &["node", "m3"]).await;
    let cp_secs = cp_start.elapsed().as_secs_f64();
    // Both apiservers keep their address in the kubernetes Service's endpoints.
    wait_for("both apiservers in the kubernetes endpoints", 60, || {
        let e = get_json(&admin, &["get", "endpoints", "kubernetes"])?;
        let s = e["subsets"].to_string();
        (s.contains(M1_IP) && s.contains(M3_IP))
            .then_some(())
            .ok_or(s)
    })
    .await;
    // Node IPAM gave each node its own pod CIDR.
    for (n, cidr) in [
        ("m1", "10.244.0.0/24"),
        ("m2", "10.244.1.0/24"),
        ("m3", "10.244.2.0/24"),
    ] {
        let node = get_json(&admin, &["get", "node", n]).unwrap();
        assert_eq!(node["spec"]["podCIDR"], cidr, "{node}");
    }

    // The add-ons on every node.
    wait_for("kube-proxy on every node", 120, || {
        ready_count(&admin, "daemonset", "kube-proxy", "numberReady", 3)
    })
    .await;
    wait_for("cluster-network on every node", 120, || {
        ready_count(&admin, "daemonset", "cluster-network", "numberReady", 3)
    })
    .await;
    wait_for("coredns available", 120, || {
        ready_count(&admin, "deployment", "coredns", "availableReplicas", 2)
    })
    .await;
    // metrics-server as the Deployment add-on (its image from build/build-images.py).
    let metrics_addon = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cluster/addons/metrics-server")
        .display()
        .to_string();
    let (ok, o) = kubectl(&admin, &["apply", "-f", &metrics_addon]);
    assert!(ok, "{o}");

    // A Deployment with a pod on each node behind a Service, reached by DNS name from
    // a pod on m2: both answer, so traffic crosses the machines.
    let web = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {
                    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}},
                    "containers": [{"name": "web", "image": integration_tests::node::BUSYBOX,
                        "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}});
    let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    for (name, obj) in [("web.json", web), ("svc.json", svc)] {
        let f = work.path().join(name);
        std::fs::write(&f, obj.to_string()).unwrap();
        let (ok, o) = kubectl(&admin, &["create", "-f", &f.display().to_string()]);
        assert!(ok, "{o}");
    }
    wait_for("web available", 120, || {
        let d = get_json(&admin, &["get", "deployment", "web"])?;
        (d["status"]["availableReplicas"] == 2)
            .then_some(())
            .ok_or_else(|| d["status"].to_string())
    })
    .await;
    let pods = get_json(&admin, &["get", "pods", "-l", "app=web"]).unwrap();
    let mut names: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    // The Metrics API through aggregation, from every machine's kubelet.
    wait_for("kubectl top nodes", 180, || {
        let (ok, o) = kubectl(&admin, &["top", "nodes"]);
        let all = ["m1", "m2", "m3"]
            .iter()
            .all(|m| o.lines().any(|l| l.starts_with(m)));
        if ok && all {
            return Ok(());
        }
        let (_, ms) = kubectl(
            &admin,
            &[
                "-n",
                "kube-system",
                "get",
                "pods,apiservice",
                "-l",
                "k8s-app=metrics-server",
                "-o",
                "wide",
            ],
        );
        Err(format!("{o}\n{ms}"))
    })
    .await;
    let client = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": "default"},
        "spec": {"restartPolicy": "Never", "nodeName": "m2",
            "containers": [{"name": "c", "image": integration_tests::node::BUSYBOX,
                "command": ["sh", "-c", RESOLVE_AND_FETCH]}]}});
    let f = work.path().join("client.json");
    std::fs::write(&f, client.to_string()).unwrap();
    let (ok, o) = kubectl(&admin, &["create", "-f", &f.display().to_string()]);
    assert!(ok, "{o}");
    let phase = wait_for("client pod finished", 120, || {
        let p = get_json(&admin, &["get", "pod", "client"])?;
        match p["status"]["phase"].as_str() {
            Some(ph @ ("Succeeded" | "Failed")) => Ok(ph.to_string()),
            _ => Err(p["status"].to_string()),
        }
    })
    .await;
    let (_, logs) = kubectl(&admin, &["logs", "client"]);
    // A request that found no backend yet prints nothing.
    let mut seen: Vec<String> = logs
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(phase, "Succeeded", "{logs}");
    assert_eq!(seen, names, "{logs}");
    println!(
        "kubeadm init: {init_secs:.1}s, control-plane node Ready {m1_ready_secs:.1}s after init started; kubeadm join to a Ready worker: {join_secs:.1}s; kubeadm join --control-plane to a Ready control-plane node: {cp_secs:.1}s"
    );

    // kubeadm certs: upstream's expiration table; `renew all`, then the control plane
    // restarted (its containers killed; the kubelet starts them again) serves the new
    // certificates and the cluster keeps working.
    let kubeadm_on = |m: &Machine, args: &[&str]| {
        let o = m
            .cmd(integration_tests::binary("kubeadm"))
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "kubeadm {args:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let table = kubeadm_on(&m1, &["certs", "check-expiration"]);
    for col in [
        "CERTIFICATE",
        "EXPIRES",
        "RESIDUAL TIME",
        "CERTIFICATE AUTHORITY",
        "EXTERNALLY MANAGED",
        "apiserver-etcd-client",
        "front-proxy-ca",
    ] {
        assert!(table.contains(col), "{table}");
    }
    let serial = |pem: &str| {
        let o = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(pem.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let apiserver_crt = m1.etc().join("pki/apiserver.crt");
    let before = serial(&std::fs::read_to_string(&apiserver_crt).unwrap());
    let out = kubeadm_on(&m1, &["certs", "renew", "all"]);
    assert!(out.contains("Done renewing certificates."), "{out}");
    let renewed = serial(&std::fs::read_to_string(&apiserver_crt).unwrap());
    assert_ne!(before, renewed);
    kill_tasks(
        &c1,
        &[
            "kube-apiserver:",
            "kube-controller-manager:",
            "kube-scheduler:",
            "etcd:",
        ],
    );
    let served = || {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect {M1_IP}:6443 </dev/null 2>/dev/null | openssl x509"
            ))
            .output()
            .unwrap();
        serial(&String::from_utf8_lossy(&o.stdout))
    };
    wait_for("the apiserver serving its renewed certificate", 120, || {
        let s = served();
        (s == renewed).then_some(()).ok_or(s)
    })
    .await;
    let after = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "after-renew", "namespace": "default"},
        "spec": {"nodeName": "m2", "containers": [{"name": "c", "image": integration_tests::node::BUSYBOX,
            "command": ["sleep", "3600"]}]}});
    let f = work.path().join("after.json");
    std::fs::write(&f, after.to_string()).unwrap();
    wait_for("a pod created after the renewal", 120, || {
        let (ok, o) = kubectl(&admin, &["create", "-f", &f.display().to_string()]);
        (ok || o.contains("AlreadyExists")).then_some(()).ok_or(o)
    })
    .await;
    wait_for("the pod created after the renewal running", 120, || {
        let p = get_json(&admin, &["get", "pod", "after-renew"])?;
        (p["status"]["phase"] == "Running")
            .then_some(())
            .ok_or_else(|| p["status"].to_string())
    })
    .await;

    // m1 fails: its kubelet and then its apiserver are killed (nothing restarts it).
    // The cluster goes on through the load balancer and m3.
    let leases = |admin: &Path| -> Result<Vec<String>, String> {
        ["kube-controller-manager", "kube-scheduler"]
            .iter()
            .map(|l| {
                let o = get_json(admin, &["-n", "kube-system", "get", "lease", l])?;
                Ok(o["spec"]["holderIdentity"]
                    .as_str()
                    .unwrap_or("")
                    .to_string())
            })
            .collect()
    };
    println!("leaders before m1 fails: {:?}", leases(&admin));
    drop(kubelet1);
    kill_tasks(&c1, &["kube-apiserver:"]);
    let failed = Instant::now();
    wait_for("the kubernetes EndpointSlice without m1", 40, || {
        let e = get_json(&admin, &["get", "endpointslice", "kubernetes"])?;
        let s = e["endpoints"].to_string();
        (!s.contains(M1_IP) && s.contains(M3_IP))
            .then_some(())
            .ok_or(s)
    })
    .await;
    let endpoint_secs = failed.elapsed().as_secs_f64();
    wait_for(
        "m3 leading the controller-manager and scheduler",
        90,
        || {
            let l = leases(&admin)?;
            l.iter()
                .all(|h| h.starts_with("m3_"))
                .then_some(())
                .ok_or(format!("{l:?}"))
        },
    )
    .await;
    let leader_secs = failed.elapsed().as_secs_f64();
    let later = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "after-failover", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "after-failover"}},
            "template": {"metadata": {"labels": {"app": "after-failover"}},
                "spec": {"containers": [{"name": "c", "image": integration_tests::node::BUSYBOX,
                    "command": ["sleep", "3600"]}]}}}});
    let f = work.path().join("later.json");
    std::fs::write(&f, later.to_string()).unwrap();
    let (ok, o) = kubectl(&admin, &["create", "-f", &f.display().to_string()]);
    assert!(ok, "{o}");
    wait_for(
        "a Deployment created after m1 failed available",
        120,
        || {
            let d = get_json(&admin, &["get", "deployment", "after-failover"])?;
            (d["status"]["availableReplicas"] == 1)
                .then_some(())
                .ok_or_else(|| d["status"].to_string())
        },
    )
    .await;
    println!(
        "m1 failed: kubernetes EndpointSlice without it after {endpoint_secs:.1}s, m3 leading after {leader_secs:.1}s, a new Deployment available after {:.1}s",
        failed.elapsed().as_secs_f64()
    );

    // kubeadm reset on each machine (the kubelet stopped first: no systemd here) leaves
    // none of kubeadm's files behind.
    // m3's etcd member leaves the cluster (m1's member stays alone).
    for (m, kubelet, c) in [(&m2, kubelet2, &c2), (&m3, kubelet3, &c3)] {
        drop(kubelet);
        let out = integration_tests::kubeadm::reset_leaves_nothing(m, &c.endpoint());
        assert!(c.running_tasks().is_empty(), "{out}");
        if std::ptr::eq(m, &m3) {
            let removed = format!("[reset] Removed the etcd member https://{M3_IP}:2380");
            assert!(out.contains(&removed), "{out}");
        }
    }
    let out = integration_tests::kubeadm::reset_leaves_nothing(&m1, &c1.endpoint());
    assert!(c1.running_tasks().is_empty(), "{out}");
}
