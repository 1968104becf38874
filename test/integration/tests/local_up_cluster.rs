//! `hack/local-up-cluster.sh`, the README's first command, run for real inside a network
//! namespace of the test's own (the namespace's address is the node's): the cluster comes
//! up, `kubectl create deployment` + `kubectl expose` answer over the ClusterIP, and
//! SIGTERM stops everything the script started.

use integration_tests::netns::{NetNs, run};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE_IP: &str = "10.220.0.2";

fn get(addr: &str) -> Result<String, String> {
    use std::io::Write;
    let a: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .ok_or(buf)
}

#[test]
fn local_up_cluster_serves_a_deployment() {
    let ns = NetNs::new("luc");
    ns.enter();
    NetNs::add_uplink(&[&format!("{NODE_IP}/24")]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cluster");
    let bin = integration_tests::binary("kube-apiserver");
    let out_path = dir.path().join("script.out");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/local-up-cluster.sh");
    let mut child = Command::new(&script)
        .env("LOCAL_CLUSTER_DIR", &state)
        .env("LOCAL_CLUSTER_BIN_DIR", bin.parent().unwrap())
        .env("NODE_IP", NODE_IP)
        .env("NODE_NAME", "local-node")
        .env("DNS_FORWARD", "none")
        .env("API_PORT", integration_tests::free_port().to_string())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        if out.contains("Cluster is up") {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let logs = std::fs::read_to_string(state.join("logs/kubelet.log")).unwrap_or_default();
            panic!(
                "local-up-cluster.sh exited with {st}:\n{out}\n{}",
                &logs[logs.len().saturating_sub(3000)..]
            );
        }
        assert!(Instant::now() < deadline, "cluster not up in time:\n{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A failing test still stops the cluster.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = Command::new("kill")
                    .args(["-TERM", &self.0.to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(5));
            }
        }
    }
    let _stop = Stop(child.id());
    let kubeconfig = state.join("admin.kubeconfig");
    let kubectl = |args: &[&str], stdin: Option<&str>| -> String {
        let mut c = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(kubectl(&["get", "nodes"], None).contains("local-node"));
    // The README's commands: the Deployment and the Service come from kubectl's imperative
    // commands, which send protobuf.
    let image = format!("--image={}", integration_tests::node::BUSYBOX);
    kubectl(
        &[
            "create",
            "deployment",
            "hello",
            &image,
            "--replicas=2",
            "--port=8080",
            "--",
            "sh",
            "-c",
            "mkdir -p /www && echo hello-local > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
        None,
    );
    kubectl(
        &[
            "expose",
            "deployment",
            "hello",
            "--port=80",
            "--target-port=8080",
        ],
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let ip = loop {
        let d: Value = serde_json::from_str(&kubectl(
            &["get", "deployment", "hello", "-o", "json"],
            None,
        ))
        .unwrap();
        if d["status"]["availableReplicas"] == 2 {
            let s: Value =
                serde_json::from_str(&kubectl(&["get", "service", "hello", "-o", "json"], None))
                    .unwrap();
            break s["spec"]["clusterIP"].as_str().unwrap().to_string();
        }
        if Instant::now() > deadline {
            let pods = kubectl(&["get", "pods", "-o", "json"], None);
            let log = std::fs::read_to_string(state.join("logs/kubelet.log")).unwrap_or_default();
            let warn: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            panic!(
                "deployment not available: {}\npods: {pods}\nkubelet: {}",
                d["status"],
                warn[warn.len().saturating_sub(15)..].join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get(&format!("{ip}:80")) {
            Ok(body) if body == "hello-local" => break,
            other => assert!(Instant::now() < deadline, "ClusterIP {ip}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM stops everything the script started.
    run(&["kill", "-TERM", &child.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "local-up-cluster.sh did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = Command::new("pgrep")
        .args(["-f", &state.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(
        std::fs::read_to_string(&out_path)
            .unwrap()
            .contains("stopped")
    );
}

/// A fresh Debian machine gets everything the build and the cluster need from the script
/// itself: the packages it checks for include the build's (protoc and its well-known
/// types, a C compiler), and a prebuilt binary directory drops them.
#[test]
fn local_up_cluster_installs_what_the_build_needs() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/local-up-cluster.sh");
    let list = |bin_dir: Option<&str>, etcd: bool| {
        let mut cmd = Command::new(&script);
        cmd.env("LOCAL_CLUSTER_LIST_PACKAGES", "1")
            .env_remove("LOCAL_CLUSTER_BIN_DIR");
        if let Some(d) = bin_dir {
            cmd.env("LOCAL_CLUSTER_BIN_DIR", d);
        }
        if etcd {
            cmd.arg("--etcd");
        }
        let out = cmd.output().expect("running the script");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let from_source = list(None, false);
    for pkg in [
        "protobuf-compiler",
        "libprotobuf-dev",
        "gcc",
        "containerd",
        "runc",
        "containernetworking-plugins",
        "iptables",
        "nftables",
        "conntrack",
        "busybox-static",
        "iproute2",
    ] {
        assert!(
            from_source.iter().any(|p| p == pkg),
            "{pkg}: {from_source:?}"
        );
    }
    assert!(!from_source.iter().any(|p| p == "etcd-server"));
    let prebuilt = list(Some("/tmp"), true);
    assert!(!prebuilt.iter().any(|p| p == "protobuf-compiler"));
    assert!(prebuilt.iter().any(|p| p == "etcd-server"));
}
