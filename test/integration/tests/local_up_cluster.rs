//! `hack/local-up-cluster.sh`, the README's first command, run for real inside a network
//! namespace of the test's own (the namespace's address is the node's): the cluster comes
//! up, `kubectl create deployment` + `kubectl expose` answer over the ClusterIP, and
//! the Service also answers as a NodePort on the node's address, each replica directly
//! (node to pod) and through the apiserver's pod proxy, a pod's hostPort on the node, an
//! ExternalName Service as a CNAME from the cluster DNS behind its ClusterIP, and SIGTERM
//! stops everything the script started.

use integration_tests::netns::{NetNs, run};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE_IP: &str = "10.220.0.2";

fn get(addr: &str) -> Result<String, String> {
    get_path(addr, "/index.html")
}

fn get_path(addr: &str, path: &str) -> Result<String, String> {
    use std::io::Write;
    let a: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
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
        .env("METRICS_PORT", integration_tests::free_port().to_string())
        .env("METRIC_RESOLUTION", "10s")
        // Not a test of eviction: the CI build may leave the disk nearly full.
        .env(
            "EVICTION_HARD",
            "memory.available<100Mi,nodefs.available<0%",
        )
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
    services_answer_end_to_end(&kubectl);
    claims_get_volumes_from_the_default_class(&kubectl, &state);
    let try_kubectl = |args: &[&str]| -> Result<String, String> {
        let o = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .output()
            .unwrap();
        match o.status.success() {
            true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        }
    };
    // Our kubectl reads the same Metrics API.
    let ours = |args: &[&str]| -> Result<String, String> {
        let o = Command::new(integration_tests::binary("kubectl"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        match o.status.success() {
            true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        }
    };
    metrics_and_autoscaling(&kubectl, &try_kubectl, &ours, dir.path(), &state);
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

/// The one-command cluster's storage: a StatefulSet's claim template with no class gets
/// the default class's csi-hostpath volume, written and read in the pod; the set and its
/// claim deleted, the volume goes too.
fn claims_get_volumes_from_the_default_class(
    kubectl: &dyn Fn(&[&str], Option<&str>) -> String,
    state: &std::path::Path,
) {
    let image = integration_tests::node::BUSYBOX;
    kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  serviceName: db\n  replicas: 1\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: c\n        image: {image}\n        command: [sh, -c, 'echo stored > /data/f; exec sleep 3600']\n        volumeMounts: [{{name: data, mountPath: /data}}]\n  volumeClaimTemplates:\n  - metadata: {{name: data}}\n    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 64Mi}}}}}}\n"
        )),
    );
    let driver_log =
        || std::fs::read_to_string(state.join("logs/csi-hostpath.log")).unwrap_or_default();
    wait_for(120, "the StatefulSet's pod ready", || {
        let p: Value = serde_json::from_str(&kubectl(
            &["get", "pod", "db-0", "-o", "json", "--ignore-not-found"],
            None,
        ))
        .unwrap_or_default();
        (p["status"]["containerStatuses"][0]["ready"] == true)
            .then_some(())
            .ok_or_else(|| format!("{}\ndriver: {}", p["status"], driver_log()))
    });
    assert_eq!(
        kubectl(&["exec", "db-0", "--", "cat", "/data/f"], None).trim(),
        "stored"
    );
    let pvc: Value =
        serde_json::from_str(&kubectl(&["get", "pvc", "data-db-0", "-o", "json"], None)).unwrap();
    assert_eq!(pvc["spec"]["storageClassName"], "csi-hostpath");
    assert_eq!(pvc["status"]["phase"], "Bound");
    kubectl(&["delete", "statefulset", "db"], None);
    kubectl(&["delete", "pvc", "data-db-0", "--wait=false"], None);
    wait_for(120, "the volume deleted", || {
        let pvs = kubectl(&["get", "pv", "-o", "name"], None);
        pvs.trim().is_empty().then_some(()).ok_or(pvs)
    });
}

/// The words of a table's first line (its column headers).
fn first_line_words(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// The Metrics API from metrics-server through aggregation: `kubectl top` with upstream's
/// columns, and an HPA that scales a CPU-burning Deployment up from real usage and back
/// down once the load stops.
fn metrics_and_autoscaling(
    kubectl: &dyn Fn(&[&str], Option<&str>) -> String,
    try_kubectl: &dyn Fn(&[&str]) -> Result<String, String>,
    ours: &dyn Fn(&[&str]) -> Result<String, String>,
    scratch: &std::path::Path,
    state: &std::path::Path,
) {
    let ms_log =
        || std::fs::read_to_string(state.join("logs/metrics-server.log")).unwrap_or_default();
    let top = wait_for(90, "kubectl top nodes", || {
        try_kubectl(&["top", "nodes"]).map_err(|e| format!("{e}\nmetrics-server: {}", ms_log()))
    });
    let header = first_line_words(&top);
    assert_eq!(header[..3], ["NAME", "CPU(cores)", "CPU(%)"], "{top}");
    assert!(
        top.lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("local-node"),
        "{top}"
    );
    let our_top = ours(&["top", "nodes"]).unwrap();
    assert_eq!(first_line_words(&our_top), header, "{our_top}");
    assert!(
        our_top
            .lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("local-node"),
        "{our_top}"
    );
    let out = kubectl(&["get", "apiservice", "v1beta1.metrics.k8s.io"], None);
    assert!(out.contains("kube-system/metrics-server   True"), "{out}");

    // The load: every replica burns a CPU while the file exists.
    let load = scratch.join("load");
    std::fs::create_dir_all(&load).unwrap();
    std::fs::write(load.join("on"), "1").unwrap();
    let burner = format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "burner"}},
  "spec": {{"replicas": 1, "selector": {{"matchLabels": {{"app": "burner"}}}},
    "template": {{"metadata": {{"labels": {{"app": "burner"}}}}, "spec": {{
      "volumes": [{{"name": "load", "hostPath": {{"path": "{}"}}}}],
      "containers": [{{"name": "burn", "image": "{}", "resources": {{"requests": {{"cpu": "50m"}}}},
        "volumeMounts": [{{"name": "load", "mountPath": "/load"}}],
        "command": ["sh", "-c", "while true; do if [ -f /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi; done"]}}]}}}}}}}}"#,
        load.display(),
        integration_tests::node::BUSYBOX
    );
    kubectl(&["apply", "-f", "-"], Some(&burner));
    let hpa = r#"{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "burner"},
  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"}, "minReplicas": 1, "maxReplicas": 3,
    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}"#;
    kubectl(&["apply", "-f", "-"], Some(hpa));
    let replicas = || -> (i64, String) {
        let out = try_kubectl(&["get", "hpa", "burner", "-o", "json"]).unwrap_or_default();
        let h: Value = serde_json::from_str(&out).unwrap_or_default();
        (
            h["status"]["desiredReplicas"].as_i64().unwrap_or(0),
            h["status"].to_string(),
        )
    };
    wait_for(180, "the HPA to scale the burner up", || match replicas() {
        (3, _) => Ok(()),
        (_, st) => Err(format!(
            "{st}\n{}",
            try_kubectl(&["top", "pods"]).unwrap_or_else(|e| e)
        )),
    });
    let top = wait_for(30, "kubectl top pods -A", || {
        try_kubectl(&["top", "pods", "-A"])
    });
    let header = first_line_words(&top);
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{top}"
    );
    assert!(
        top.lines()
            .any(|l| l.starts_with("default") && l.contains("burner-")),
        "{top}"
    );
    let our_top = ours(&["top", "pods", "-A"]).unwrap();
    assert_eq!(first_line_words(&our_top), header, "{our_top}");
    assert!(
        our_top
            .lines()
            .any(|l| l.starts_with("default") && l.contains("burner-")),
        "{our_top}"
    );
    std::fs::remove_file(load.join("on")).unwrap();
    wait_for(
        180,
        "the HPA to scale the burner back down",
        || match replicas() {
            (1, _) => Ok(()),
            (_, st) => Err(st),
        },
    );
    kubectl(&["delete", "hpa,deployment", "burner"], None);
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

/// Polls `probe` until it returns `Some`, or fails naming `what` after `secs`.
fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The conformance suite's networking specs, end to end on the one-command cluster:
/// "serve a basic endpoint from pods", NodePort, node-to-pod, the pod proxy on each
/// replica, hostPort and ExternalName.
fn services_answer_end_to_end(kubectl: &dyn Fn(&[&str], Option<&str>) -> String) {
    // NodePort on the node's address.
    kubectl(
        &[
            "expose",
            "deployment",
            "hello",
            "--name=hello-np",
            "--type=NodePort",
            "--port=80",
            "--target-port=8080",
        ],
        None,
    );
    let svc: Value = serde_json::from_str(&kubectl(
        &["get", "service", "hello-np", "-o", "json"],
        None,
    ))
    .unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{svc}");
    wait_for(30, "NodePort", || {
        match get(&format!("{NODE_IP}:{node_port}")) {
            Ok(b) if b == "hello-local" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // Each replica from the node (node-to-pod) and through the apiserver's pod proxy.
    let pods: Value = serde_json::from_str(&kubectl(
        &["get", "pods", "-l", "app=hello", "-o", "json"],
        None,
    ))
    .unwrap();
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let ip = pod["status"]["podIP"].as_str().unwrap();
        assert_eq!(get(&format!("{ip}:8080")).unwrap(), "hello-local", "{name}");
        let proxied = kubectl(
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/pods/{name}:8080/proxy/index.html"),
            ],
            None,
        );
        assert_eq!(proxied.trim(), "hello-local", "{name}");
        // Without a port: the pod's first container port (upstream's ResourceLocation),
        // as the "serve a basic image on each replica" specs ask.
        let proxied = kubectl(
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/pods/{name}/proxy/index.html"),
            ],
            None,
        );
        assert_eq!(proxied.trim(), "hello-local", "{name}");
    }
    // The service proxy by service port number (the endpoints' port is the target port).
    for svc in ["hello:80", "hello", "http:hello:80"] {
        let proxied = kubectl(
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/services/{svc}/proxy/index.html"),
            ],
            None,
        );
        assert_eq!(proxied.trim(), "hello-local", "{svc}");
    }
    // A hostPort on the node's address.
    kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "hostport"}},
              "spec": {{"containers": [{{"name": "c", "image": "{}",
                "command": ["sh", "-c", "mkdir -p /www && echo via-hostport > /www/index.html && exec httpd -f -p 8080 -h /www"],
                "ports": [{{"containerPort": 8080, "hostPort": 31999, "hostIP": "{NODE_IP}"}}]}}]}}}}"#,
            integration_tests::node::BUSYBOX
        )),
    );
    wait_for(90, "hostPort", || match get(&format!("{NODE_IP}:31999")) {
        Ok(b) if b == "via-hostport" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    // ExternalName: the cluster DNS, reached through its ClusterIP, answers a CNAME.
    kubectl(
        &[
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=hello.default.svc.cluster.local",
        ],
        None,
    );
    let answer = wait_for(30, "ExternalName CNAME", || {
        let a = dns_query("10.0.0.10:53", "ext.default.svc.cluster.local")?;
        if a.iter().any(|(t, _)| *t == 5) {
            Ok(a)
        } else {
            Err(format!("no CNAME in {a:?}"))
        }
    });
    let (_, target) = answer.iter().find(|(t, _)| *t == 5).unwrap();
    assert_eq!(target, "hello.default.svc.cluster.local", "{answer:?}");
}

/// One A query over UDP; the answers as (type, rdata) with CNAME targets decoded.
fn dns_query(server: &str, name: &str) -> Result<Vec<(u16, String)>, String> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&q, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).map_err(|e| e.to_string())?;
    let msg = &buf[..n];
    let answers = u16::from_be_bytes([msg[6], msg[7]]);
    // Skip the header and the question we sent.
    let mut at = q.len();
    let mut out = Vec::new();
    for _ in 0..answers {
        let (_, next) = read_name(msg, at)?;
        let typ = u16::from_be_bytes([msg[next], msg[next + 1]]);
        let len = u16::from_be_bytes([msg[next + 8], msg[next + 9]]) as usize;
        let rdata = next + 10;
        let text = if typ == 5 {
            read_name(msg, rdata)?.0
        } else {
            format!("{:?}", &msg[rdata..rdata + len])
        };
        out.push((typ, text));
        at = rdata + len;
    }
    Ok(out)
}

/// A (possibly compressed) domain name at `at`; the name and the offset after it.
fn read_name(msg: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(at).ok_or("truncated name")? as usize;
        if len == 0 {
            return Ok((labels.join("."), end.unwrap_or(at + 1)));
        }
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(at + 2);
            at = ((len & 0x3f) << 8) | *msg.get(at + 1).ok_or("truncated pointer")? as usize;
            continue;
        }
        let label = msg.get(at + 1..at + 1 + len).ok_or("truncated label")?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + len;
    }
    Err("name loop".into())
}
