//! Our kubelet on a real containerd (runc, CNI bridge) against our apiserver: node
//! registration and lease, pods running with IPs reachable from the host, logs and exec
//! through the apiserver with the real kubectl, probes, init and sidecar containers,
//! volumes, graceful deletion with preStop hooks, and static pods with mirror pods.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::node::{BUSYBOX, TestContainerd, TestKubelet};
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

async fn node_ready(c: &Client, node: &str) -> Value {
    wait_for("node Ready", Duration::from_secs(30), || async {
        let n = c.get(&format!("/api/v1/nodes/{node}")).await.json();
        n["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            .then_some(n)
    })
    .await
}

async fn pod(c: &Client, ns: &str, name: &str) -> Value {
    c.get(&format!("/api/v1/namespaces/{ns}/pods/{name}")).await.json()
}

fn condition(p: &Value, t: &str) -> String {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .map(|c| c["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

async fn wait_phase(c: &Client, name: &str, phase: &str, secs: u64) -> Value {
    wait_for(&format!("pod {name} {phase}"), Duration::from_secs(secs), || async {
        let p = pod(c, "default", name).await;
        (p["status"]["phase"] == phase).then_some(p)
    })
    .await
}

async fn http_get(host: &str, port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect((host, port))).await.ok()?.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The node registers and goes Ready with upstream's status fields, its Lease is
/// renewed; a pod runs with an IP the host reaches, `kubectl logs` and `kubectl exec`
/// work through the apiserver, and deleting the pod stops its containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_runs_and_serves_logs_and_exec() {
    let s = TestApiServer::start(None, &["--kubelet-preferred-address-types=InternalIP,Hostname"]).await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let _k = TestKubelet::start(&s.kubeconfig(), &ctd, "node-a", &[]).await;
    let n = node_ready(&c, "node-a").await;
    let st = &n["status"];
    assert_eq!(st["nodeInfo"]["kubeletVersion"], "v1.35.0");
    assert!(st["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap().starts_with("containerd://"), "{st}");
    assert_eq!(st["capacity"]["pods"], "110");
    assert!(st["allocatable"]["memory"].is_string());
    assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "node-a");
    assert!(st["addresses"].as_array().unwrap().iter().any(|a| a["type"] == "InternalIP" && a["address"] == "127.0.0.1"));
    assert!(st["images"].as_array().unwrap().iter().any(|i| i["names"].as_array().unwrap().iter().any(|n| n == BUSYBOX)), "{st}");
    let lease = wait_for("node lease", Duration::from_secs(10), || async {
        let l = c.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a").await;
        (l.status == 200).then(|| l.json())
    })
    .await;
    assert_eq!(lease["spec"]["holderIdentity"], "node-a");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");

    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 5, "containers": [{"name": "web", "image": BUSYBOX,
            "command": ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && echo started web; exec httpd -f -p 8080 -h /www"],
            "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}}]}})).await;
    let p = wait_for("web Ready", Duration::from_secs(60), || async {
        let p = pod(&c, "default", "web").await;
        (p["status"]["phase"] == "Running" && condition(&p, "Ready") == "True").then_some(p)
    })
    .await;
    let st = &p["status"];
    assert_eq!(st["hostIP"], "127.0.0.1");
    assert_eq!(st["qosClass"], "BestEffort");
    assert_eq!(condition(&p, "Initialized"), "True");
    assert_eq!(condition(&p, "PodReadyToStartContainers"), "True");
    assert_eq!(st["containerStatuses"][0]["ready"], true);
    assert_eq!(st["containerStatuses"][0]["restartCount"], 0);
    assert!(st["containerStatuses"][0]["containerID"].as_str().unwrap().starts_with("containerd://"));
    assert!(st["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    let ip = st["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.244."), "pod IP {ip} from the node's CNI subnet {}", ctd.subnet);
    let body = wait_for("pod reachable from the host", Duration::from_secs(10), || http_get(&ip, 8080, "/index.html")).await;
    assert_eq!(body.trim(), "hello-from-pod");

    let logs = s.kubectl_ok(&["logs", "web"], None);
    assert_eq!(logs.trim(), "started web");
    let host = s.kubectl_ok(&["exec", "web", "--", "cat", "/etc/hostname"], None);
    assert_eq!(host.trim(), "web");
    let (ok, out, err) = s.kubectl(&["exec", "web", "--", "sh", "-c", "exit 3"], None);
    assert!(!ok && err.contains("exit code 3"), "{out} {err}");

    // Deleting: containers stop, the pod object goes.
    let r = c.request("DELETE", "/api/v1/namespaces/default/pods/web", "application/json", "").await;
    assert_eq!(r.status, 200);
    wait_for("pod gone", Duration::from_secs(30), || async {
        (c.get("/api/v1/namespaces/default/pods/web").await.status == 404).then_some(())
    })
    .await;
    wait_for("containers stopped", Duration::from_secs(10), || async { ctd.running_tasks().is_empty().then_some(()) }).await;
}
