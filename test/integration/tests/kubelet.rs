//! Our kubelet on a real containerd (runc, CNI bridge) against our apiserver: node
//! registration and lease, pods running with IPs reachable from the host, logs and exec
//! through the apiserver with the real kubectl, probes, init and sidecar containers,
//! volumes, graceful deletion with preStop hooks, and static pods with mirror pods.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::node::{BUSYBOX, TestContainerd, TestKubelet};
use integration_tests::{condition, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

async fn node_ready(c: &Client, node: &str) -> Value {
    wait_for("node Ready", Duration::from_secs(30), || async {
        let n = c.get(&format!("/api/v1/nodes/{node}")).await.json();
        n["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .then_some(n)
    })
    .await
}

async fn pod(c: &Client, ns: &str, name: &str) -> Value {
    c.get(&format!("/api/v1/namespaces/{ns}/pods/{name}"))
        .await
        .json()
}

async fn wait_phase(c: &Client, name: &str, phase: &str, secs: u64) -> Value {
    wait_for(
        &format!("pod {name} {phase}"),
        Duration::from_secs(secs),
        || async {
            let p = pod(c, "default", name).await;
            (p["status"]["phase"] == phase).then_some(p)
        },
    )
    .await
}

/// The node registers and goes Ready with upstream's status fields, its Lease is
/// renewed; a pod runs with an IP the host reaches, `kubectl logs` and `kubectl exec`
/// work through the apiserver, and deleting the pod stops its containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_runs_and_serves_logs_and_exec() {
    // The kubelet acts as its node (system:node:node-a in system:nodes) under the Node
    // authorizer, RBAC and NodeRestriction, as in a kubeadm cluster.
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "test-admin-token,test-admin,0,system:masters\nnode-a-token,system:node:node-a,n1,system:nodes\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            &format!("--token-auth-file={}", tokens.display()),
            "--disable-admission-plugins=ServiceAccount",
        ],
        Some("test-admin-token"),
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let node_kubeconfig = s.user_kubeconfig("node-a", "    token: node-a-token\n");
    let mut k = TestKubelet::start(&node_kubeconfig, &ctd, "node-a", &[]).await;
    let n = node_ready(&c, "node-a").await;
    let st = &n["status"];
    assert_eq!(st["nodeInfo"]["kubeletVersion"], "v1.35.0");
    assert!(
        st["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"),
        "{st}"
    );
    assert_eq!(st["capacity"]["pods"], "110");
    assert!(st["allocatable"]["memory"].is_string());
    assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "node-a");
    assert!(
        st["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "InternalIP" && a["address"] == "127.0.0.1")
    );
    assert!(
        st["images"].as_array().unwrap().iter().any(|i| i["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == BUSYBOX)),
        "{st}"
    );
    let lease = wait_for("node lease", Duration::from_secs(10), || async {
        let l = c
            .get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a")
            .await;
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
    assert!(
        st["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(st["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    let ip = st["podIP"].as_str().unwrap().to_string();
    assert!(
        ip.starts_with("10.244."),
        "pod IP {ip} from the node's CNI subnet {}",
        ctd.subnet
    );
    let body = wait_for(
        "pod reachable from the host",
        Duration::from_secs(10),
        || integration_tests::http_get(&ip, 8080, "/index.html"),
    )
    .await;
    assert_eq!(body.trim(), "hello-from-pod");

    let logs = s.kubectl_ok(&["logs", "web"], None);
    assert_eq!(logs.trim(), "started web");
    // `logs -f` streams (here: the line already there, then it keeps the stream open).
    let mut follow = std::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(["logs", "-f", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(follow.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first.trim(), "started web");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "logs -f keeps following a running container"
    );
    let _ = follow.kill();
    let _ = follow.wait();
    let host = s.kubectl_ok(&["exec", "web", "--", "cat", "/etc/hostname"], None);
    assert_eq!(host.trim(), "web");
    let echoed = s.kubectl_ok(&["exec", "-i", "web", "--", "cat"], Some("from-stdin\n"));
    assert_eq!(echoed.trim(), "from-stdin");
    let (ok, out, err) = s.kubectl(&["exec", "web", "--", "sh", "-c", "exit 3"], None);
    assert!(!ok && err.contains("exit code 3"), "{out} {err}");

    // kubectl port-forward through the apiserver and the kubelet to the pod's port.
    let local = integration_tests::free_port();
    let mut pf = std::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args([
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/web",
            &format!("{local}:8080"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = wait_for("port-forward serves", Duration::from_secs(20), || {
        integration_tests::http_get("127.0.0.1", local, "/index.html")
    })
    .await;
    let _ = pf.kill();
    let _ = pf.wait();
    assert_eq!(body.trim(), "hello-from-pod");

    // The lease is renewed; the kubelet's own endpoints answer.
    let renewed = lease["spec"]["renewTime"].clone();
    wait_for("lease renewed", Duration::from_secs(20), || async {
        let l = c
            .get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a")
            .await
            .json();
        (l["spec"]["renewTime"] != renewed).then_some(())
    })
    .await;
    assert_eq!(
        integration_tests::http_get("127.0.0.1", k.healthz_port, "/healthz")
            .await
            .as_deref(),
        Some("ok")
    );
    let metrics = s.kubectl_ok(
        &["get", "--raw", "/api/v1/nodes/node-a/proxy/metrics"],
        None,
    );
    assert!(metrics.contains("kubelet_running_pods 1"), "{metrics}");
    assert!(
        metrics.contains("kubelet_pod_start_duration_seconds_count 1"),
        "{metrics}"
    );
    // Resource usage for metrics-server: from the container's cgroup.
    let resource = s.kubectl_ok(
        &[
            "get",
            "--raw",
            "/api/v1/nodes/node-a/proxy/metrics/resource",
        ],
        None,
    );
    let ws = resource
        .lines()
        .find(|l| l.starts_with("container_memory_working_set_bytes{container=\"web\",namespace=\"default\",pod=\"web\"}"))
        .unwrap_or_else(|| panic!("{resource}"));
    let bytes: f64 = ws.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(bytes > 0.0, "{ws}");
    assert!(
        resource.contains("node_cpu_usage_seconds_total "),
        "{resource}"
    );
    let summary: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "--raw", "/api/v1/nodes/node-a/proxy/stats/summary"],
        None,
    ))
    .unwrap();
    let pod = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == "web")
        .unwrap()
        .clone();
    assert!(
        pod["containers"][0]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0,
        "{pod}"
    );
    assert!(
        pod["memory"]["workingSetBytes"].as_u64().unwrap() > 0,
        "{pod}"
    );

    // Deleting: containers stop, the pod object goes.
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/default/pods/web",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    wait_for("pod gone", Duration::from_secs(30), || async {
        (c.get("/api/v1/namespaces/default/pods/web").await.status == 404).then_some(())
    })
    .await;
    wait_for("containers stopped", Duration::from_secs(10), || async {
        ctd.running_tasks().is_empty().then_some(())
    })
    .await;
    assert_eq!(k.terminate(), Some(0), "clean exit on SIGTERM: {}", k.log());
}

fn exec(s: &TestApiServer, pod: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", pod, "--"];
    args.extend(cmd);
    s.kubectl_ok(&args, None)
}

struct Node {
    s: TestApiServer,
    c: Client,
    ctd: TestContainerd,
    k: TestKubelet,
}

async fn node(name: &str) -> Node {
    let s = TestApiServer::start(
        None,
        &["--kubelet-preferred-address-types=InternalIP,Hostname"],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let k = TestKubelet::start(&s.kubeconfig(), &ctd, name, &[]).await;
    node_ready(&c, name).await;
    Node { s, c, ctd, k }
}

/// A failing liveness probe restarts the container (restartCount, lastState); the
/// readiness probe drives Ready both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_restart_and_flip_readiness() {
    let Node {
        s,
        c,
        ctd: _ctd,
        k: _k,
    } = node("node-p").await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
        "spec": {"nodeName": "node-p", "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": BUSYBOX,
            "command": ["sh", "-c", "echo started $(date +%s%N); touch /tmp/healthy; exec sleep 3600"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1},
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}]}})).await;
    let p = wait_phase(&c, "probed", "Running", 60).await;
    assert_eq!(
        condition(&p, "Ready"),
        "False",
        "not ready before the probe passes"
    );
    exec(&s, "probed", &["touch", "/tmp/ready"]);
    wait_for("Ready", Duration::from_secs(15), || async {
        (condition(&pod(&c, "default", "probed").await, "Ready") == "True").then_some(())
    })
    .await;
    exec(&s, "probed", &["rm", "/tmp/ready"]);
    let p = wait_for("not Ready", Duration::from_secs(15), || async {
        let p = pod(&c, "default", "probed").await;
        (condition(&p, "Ready") == "False").then_some(p)
    })
    .await;
    assert!(
        p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "ContainersReady" && c["reason"] == "ContainersNotReady")
    );
    exec(&s, "probed", &["rm", "/tmp/healthy"]);
    let p = wait_for("restarted by liveness", Duration::from_secs(30), || async {
        let p = pod(&c, "default", "probed").await;
        (p["status"]["containerStatuses"][0]["restartCount"] == 1
            && p["status"]["containerStatuses"][0]["state"]["running"].is_object())
        .then_some(p)
    })
    .await;
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().unwrap() != 0, "{last}");
    assert!(last["finishedAt"].is_string());
    // Each instance has its own log; `--previous` reads the one before the restart.
    let now = s.kubectl_ok(&["logs", "probed"], None);
    let before = s.kubectl_ok(&["logs", "probed", "--previous"], None);
    assert!(
        now.starts_with("started ") && before.starts_with("started "),
        "{now} / {before}"
    );
    assert_ne!(now, before);
    let stamped = s.kubectl_ok(&["logs", "probed", "--timestamps"], None);
    assert!(
        stamped
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok(),
        "{stamped}"
    );
}

/// Init containers run in order, a sidecar (init container with restartPolicy Always)
/// keeps running beside the main container, and a pod whose main container exits 0
/// with restartPolicy Never completes: Succeeded, sidecar stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_and_sidecar_then_completion() {
    let Node { s, c, ctd, k: _k } = node("node-i").await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
        "spec": {"nodeName": "node-i", "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "work", "emptyDir": {}}],
            "initContainers": [
                {"name": "one", "image": BUSYBOX, "command": ["sh", "-c", "echo one >> /work/order"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                {"name": "side", "image": BUSYBOX, "restartPolicy": "Always", "command": ["sh", "-c", "echo side >> /work/order; exec sleep 3600"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                // A non-root user can write to the emptyDir (upstream makes it 0777).
                {"name": "two", "image": BUSYBOX, "command": ["sh", "-c", "sleep 1; echo two > /work/two"],
                    "securityContext": {"runAsUser": 1001}, "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "containers": [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "cat /work/order /work/two; echo -n DONE > /dev/termination-log; sleep 3"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]}]}})).await;
    // [sig-node] Container Runtime: termination messages from a non-default path as a
    // non-root user, falling back to the log when the container failed and wrote none.
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fallback"},
        "spec": {"nodeName": "node-i", "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo failing; exit 1"],
                "securityContext": {"runAsUser": 1001},
                "terminationMessagePath": "/dev/custom-log", "terminationMessagePolicy": "FallbackToLogsOnError"}]}})).await;
    // While main runs, the sidecar runs too.
    let p = wait_for(
        "main and sidecar running",
        Duration::from_secs(60),
        || async {
            let p = pod(&c, "default", "job").await;
            let st = &p["status"];
            (st["containerStatuses"][0]["state"]["running"].is_object()
                && st["initContainerStatuses"][1]["state"]["running"].is_object())
            .then_some(p)
        },
    )
    .await;
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(condition(&p, "Initialized"), "True");
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    // [sig-node] InitContainer: a completed init container reports ready, as upstream.
    assert_eq!(p["status"]["initContainerStatuses"][0]["ready"], true);
    assert_eq!(p["status"]["initContainerStatuses"][1]["started"], true);
    let p = wait_phase(&c, "job", "Succeeded", 30).await;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["message"],
        "DONE"
    );
    let f = wait_phase(&c, "fallback", "Failed", 60).await;
    assert_eq!(
        f["status"]["containerStatuses"][0]["state"]["terminated"]["message"], "failing\n",
        "{}",
        f["status"]
    );
    let logs = s.kubectl_ok(&["logs", "job", "-c", "main"], None);
    assert_eq!(
        logs.split_whitespace().collect::<Vec<_>>(),
        ["one", "side", "two"]
    );
    wait_for(
        "sidecar and sandbox stopped",
        Duration::from_secs(15),
        || async { ctd.running_tasks().is_empty().then_some(()) },
    )
    .await;
    let p = pod(&c, "default", "job").await;
    assert!(
        p["status"]["initContainerStatuses"][1]["state"]["terminated"].is_object(),
        "{}",
        p["status"]
    );
}

/// configMap, secret, downwardAPI and projected (bound service-account token) volumes
/// hold the right files; a configMap update reaches the volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_have_their_contents() {
    let Node {
        s,
        c,
        ctd: _ctd,
        k: _k,
    } = node("node-v").await;
    c.create(
        "/api/v1/namespaces/default/serviceaccounts",
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
    )
    .await;
    c.create("/api/v1/namespaces/default/configmaps", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"greeting": "hello"}})).await;
    c.create("/api/v1/namespaces/default/secrets", &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"password": "s3cret"}})).await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols", "labels": {"app": "vols"}},
        "spec": {"nodeName": "node-v", "terminationGracePeriodSeconds": 1,
            "hostAliases": [{"ip": "123.45.67.89", "hostnames": ["foo", "bar"]}],
            "volumes": [
                {"name": "cm", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {"name": "down", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "cpu_request", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}},
                    {"path": "memory_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
                    {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}]}},
                {"name": "proj", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}},
                    {"configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "cfg/greeting"}]}},
                    {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}],
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "64Mi"}},
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                        {"name": "MEMORY_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                        {"name": "COMBINED", "value": "$(GREETING)-$(POD_NAME)"}],
                "volumeMounts": [
                    {"name": "cm", "mountPath": "/cm"}, {"name": "sec", "mountPath": "/sec"},
                    {"name": "down", "mountPath": "/down"}, {"name": "proj", "mountPath": "/proj"}]}]}})).await;
    wait_phase(&c, "vols", "Running", 60).await;
    assert_eq!(exec(&s, "vols", &["cat", "/cm/greeting"]), "hello");
    // [sig-node] KubeletManagedEtcHosts: the pod's IP under its name, and its aliases.
    let ip = c.get("/api/v1/namespaces/default/pods/vols").await.json()["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let hosts = exec(&s, "vols", &["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts}"
    );
    assert!(hosts.contains(&format!("\n{ip}\tvols\n")), "{hosts}");
    assert!(
        hosts.ends_with("# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n"),
        "{hosts}"
    );
    assert_eq!(exec(&s, "vols", &["cat", "/sec/password"]), "s3cret");
    assert_eq!(
        exec(&s, "vols", &["stat", "-L", "-c", "%a", "/sec/password"]).trim(),
        "400"
    );
    assert_eq!(exec(&s, "vols", &["cat", "/down/labels"]), "app=\"vols\"");
    // [sig-node] Downward API volume/env resourceFieldRef: requests and limits, and the
    // node's allocatable where the container sets no limit.
    assert_eq!(exec(&s, "vols", &["cat", "/down/cpu_request"]), "250");
    assert_eq!(exec(&s, "vols", &["cat", "/down/memory_limit"]), "64");
    let node = c.get("/api/v1/nodes/node-v").await.json();
    let allocatable_cpu = node["status"]["allocatable"]["cpu"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        exec(&s, "vols", &["cat", "/down/cpu_limit"]),
        allocatable_cpu
    );
    assert_eq!(exec(&s, "vols", &["cat", "/proj/cfg/greeting"]), "hello");
    assert_eq!(exec(&s, "vols", &["cat", "/proj/name"]), "vols");
    let env = exec(&s, "vols", &["env"]);
    for want in [
        "POD_NAME=vols",
        "GREETING=hello",
        "PASSWORD=s3cret",
        "COMBINED=hello-vols",
        "MEMORY_LIMIT=67108864",
        &format!("CPU_LIMIT={allocatable_cpu}"),
        "KUBERNETES_SERVICE_HOST=",
    ] {
        assert!(env.contains(want), "{want} in {env}");
    }
    // The token is bound to the pod and for the audience asked.
    let token = exec(&s, "vols", &["cat", "/proj/token"]);
    let review = c
        .create(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token.trim(), "audiences": ["vault"]}}),
        )
        .await;
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(
        review["status"]["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "vols"
    );
    // Updates reach the volume (atomically swapped).
    let r = c
        .merge_patch(
            "/api/v1/namespaces/default/configmaps/cfg",
            &json!({"data": {"greeting": "bonjour"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    wait_for(
        "configMap update in the volume",
        Duration::from_secs(20),
        || async { (exec(&s, "vols", &["cat", "/cm/greeting"]) == "bonjour").then_some(()) },
    )
    .await;
    assert!(exec(&s, "vols", &["ls", "-a", "/cm"]).contains("..data"));

    // [sig-storage] Variable Expansion should fail substituting values in a volume subpath
    // with backsteps: the container waits with CreateContainerConfigError, nothing escapes.
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "escape"},
        "spec": {"nodeName": "node-v", "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "work", "emptyDir": {}}],
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                "env": [{"name": "UP", "value": ".."}],
                "volumeMounts": [{"name": "work", "mountPath": "/work", "subPathExpr": "$(UP)/$(UP)"}]}]}})).await;
    let waiting = wait_for(
        "the refused subPath reported",
        Duration::from_secs(30),
        || async {
            let p = c.get("/api/v1/namespaces/default/pods/escape").await.json();
            let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            (w["reason"] == "CreateContainerConfigError").then_some(w)
        },
    )
    .await;
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unable to provision SubPath `../..`: must not contain '..'"),
        "{waiting}"
    );

    // [sig-node] Ephemeral Containers: one added to the running pod starts, sees its
    // target's processes, and reports its status.
    let r = c
        .request(
            "PATCH",
            "/api/v1/namespaces/default/pods/vols/ephemeralcontainers",
            "application/strategic-merge-patch+json",
            json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": BUSYBOX,
                "command": ["sleep", "3600"], "targetContainerName": "c"}]}})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the ephemeral container running",
        Duration::from_secs(30),
        || async {
            let p = c.get("/api/v1/namespaces/default/pods/vols").await.json();
            p["status"]["ephemeralContainerStatuses"][0]["state"]["running"]
                .is_object()
                .then_some(())
        },
    )
    .await;
    let ps = s.kubectl_ok(
        &["exec", "vols", "-c", "debugger", "--", "ps", "-o", "args"],
        None,
    );
    assert!(
        ps.lines().filter(|l| l.trim() == "sleep 3600").count() >= 2,
        "the target's sleep and its own: {ps}"
    );

    // [sig-node] Pods should allow activeDeadlineSeconds to be updated: a deadline set on
    // the running pod (already past) fails it with DeadlineExceeded.
    let r = c
        .merge_patch(
            "/api/v1/namespaces/default/pods/vols",
            &json!({"spec": {"activeDeadlineSeconds": 5}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let failed = wait_for(
        "the pod past its deadline",
        Duration::from_secs(30),
        || async {
            let p = c.get("/api/v1/namespaces/default/pods/vols").await.json();
            (p["status"]["phase"] == "Failed").then_some(p)
        },
    )
    .await;
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{failed}");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
}

/// Deleting a pod gracefully runs its preStop hook, then SIGTERM reaches the process,
/// before the kubelet deletes the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_delete_runs_prestop_hook() {
    let Node {
        s: _s,
        c,
        ctd,
        k: _k,
    } = node("node-g").await;
    let host = tempfile::tempdir().unwrap();
    let dir = host.path().display().to_string();
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "graceful"},
        "spec": {"nodeName": "node-g", "terminationGracePeriodSeconds": 20,
            "volumes": [{"name": "out", "hostPath": {"path": dir, "type": "Directory"}}],
            "containers": [{"name": "c", "image": BUSYBOX,
                "command": ["sh", "-c", "trap 'echo term >> /out/events; exit 0' TERM; while :; do sleep 0.2; done"],
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/events"]}}},
                "volumeMounts": [{"name": "out", "mountPath": "/out"}]}]}})).await;
    wait_phase(&c, "graceful", "Running", 60).await;
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/default/pods/graceful",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    wait_for(
        "pod deleted by the kubelet",
        Duration::from_secs(30),
        || async {
            (c.get("/api/v1/namespaces/default/pods/graceful")
                .await
                .status
                == 404)
                .then_some(())
        },
    )
    .await;
    let events = std::fs::read_to_string(host.path().join("events")).unwrap_or_default();
    assert_eq!(
        events.split_whitespace().collect::<Vec<_>>(),
        ["prestop", "term"]
    );
    assert!(ctd.running_tasks().is_empty());
}

/// A manifest in --pod-manifest-path runs as a static pod and shows up as a mirror pod;
/// removing the manifest stops it and removes the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pod_runs_with_a_mirror_pod() {
    let Node { s: _s, c, ctd, k } = node("node-s").await;
    std::fs::write(
        k.manifests().join("static.yaml"),
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  namespace: kube-system\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sleep, \"3600\"]\n"),
    )
    .unwrap();
    let p = wait_for("mirror pod Running", Duration::from_secs(60), || async {
        let p = pod(&c, "kube-system", "static-web-node-s").await;
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .await;
    let a = &p["metadata"]["annotations"];
    assert!(a["kubernetes.io/config.mirror"].is_string(), "{a}");
    assert_eq!(a["kubernetes.io/config.source"], "file");
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(p["spec"]["nodeName"], "node-s");
    std::fs::remove_file(k.manifests().join("static.yaml")).unwrap();
    wait_for("mirror pod gone", Duration::from_secs(30), || async {
        (c.get("/api/v1/namespaces/kube-system/pods/static-web-node-s")
            .await
            .status
            == 404)
            .then_some(())
    })
    .await;
    wait_for("static pod stopped", Duration::from_secs(15), || async {
        ctd.running_tasks().is_empty().then_some(())
    })
    .await;
}

/// Node-pressure eviction: with memory.available and pid.available thresholds the node
/// cannot meet, the node reports MemoryPressure and PIDPressure (from the real task
/// count) and the pod ends Failed/Evicted with DisruptionTarget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_pods() {
    let s = TestApiServer::start(
        None,
        &["--kubelet-preferred-address-types=InternalIP,Hostname"],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let _k = TestKubelet::start(
        &s.kubeconfig(),
        &ctd,
        "node-e",
        &["--eviction-hard=memory.available<1000Ti,pid.available<100000000"],
    )
    .await;
    node_ready(&c, "node-e").await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim"},
        "spec": {"nodeName": "node-e", "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}})).await;
    let p = wait_phase(&c, "victim", "Failed", 40).await;
    assert_eq!(p["status"]["reason"], "Evicted", "{}", p["status"]);
    assert_eq!(
        p["status"]["message"],
        "The node was low on resource: memory. "
    );
    assert_eq!(condition(&p, "DisruptionTarget"), "True");
    // The node's condition comes with the kubelet's next status update, which may land
    // after the eviction itself.
    let mp = wait_for(
        "MemoryPressure=True on the node",
        Duration::from_secs(30),
        || async {
            let n = c.get("/api/v1/nodes/node-e").await.json();
            n["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "MemoryPressure" && c["status"] == "True")
                .cloned()
        },
    )
    .await;
    assert_eq!(mp["reason"], "KubeletHasInsufficientMemory");
    let n = c.get("/api/v1/nodes/node-e").await.json();
    let pid = n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PIDPressure")
        .cloned()
        .unwrap();
    assert_eq!(
        (&pid["status"], &pid["reason"], &pid["message"]),
        (
            &json!("True"),
            &json!("KubeletHasInsufficientPID"),
            &json!("kubelet has insufficient PID available")
        )
    );
    wait_for(
        "evicted pod's containers stopped",
        Duration::from_secs(15),
        || async { ctd.running_tasks().is_empty().then_some(()) },
    )
    .await;
}

/// A restarted kubelet adopts the pods that kept running (same container, no restart)
/// and starts the ones created while it was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_kubelet_adopts_running_pods() {
    let Node {
        s: _s,
        c,
        ctd: _ctd,
        mut k,
    } = node("node-r").await;
    let spec = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": "node-r", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}})
    };
    c.create("/api/v1/namespaces/default/pods", &spec("before"))
        .await;
    let p = wait_phase(&c, "before", "Running", 60).await;
    let id = p["status"]["containerStatuses"][0]["containerID"].clone();
    k.terminate();
    c.create("/api/v1/namespaces/default/pods", &spec("during"))
        .await;
    k.restart_stopped().await;
    wait_phase(&c, "during", "Running", 60).await;
    let p = pod(&c, "default", "before").await;
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(
        p["status"]["containerStatuses"][0]["containerID"], id,
        "same container"
    );
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    // A pod that cannot fit the node is rejected by the kubelet's admission.
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
        "spec": {"nodeName": "node-r", "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": "1000"}}}]}})).await;
    let p = wait_phase(&c, "huge", "Failed", 30).await;
    assert_eq!(p["status"]["reason"], "OutOfcpu", "{}", p["status"]);
    let msg = p["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000, used: 0, capacity: "), "{msg}");
    // [sig-apps] StatefulSet should recreate evicted statefulset: a host port another pod
    // holds gets the pod rejected (NodePorts); another protocol on the same port does not.
    let with_port = |name: &str, proto: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "node-r", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                    "ports": [{"containerPort": 21017, "hostPort": 21017, "protocol": proto}]}]}})
    };
    c.create(
        "/api/v1/namespaces/default/pods",
        &with_port("holder", "TCP"),
    )
    .await;
    wait_phase(&c, "holder", "Running", 60).await;
    c.create(
        "/api/v1/namespaces/default/pods",
        &with_port("conflict", "TCP"),
    )
    .await;
    let p = wait_phase(&c, "conflict", "Failed", 30).await;
    assert_eq!(p["status"]["reason"], "NodePorts", "{}", p["status"]);
    c.create("/api/v1/namespaces/default/pods", &with_port("udp", "UDP"))
        .await;
    wait_phase(&c, "udp", "Running", 60).await;
}

/// The kubelet API as a kubeadm cluster runs it: no anonymous access, client
/// certificates from the cluster CA (the apiserver's `--kubelet-client-certificate`),
/// tokens by TokenReview, and every request authorized by a SubjectAccessReview on
/// `nodes/<subresource>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_api_authenticates_and_authorizes() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = integration_tests::pki::pki(
        dir.path(),
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
    );
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "test-admin-token,test-admin,0,system:masters\nnode-w-token,system:node:node-w,n1,system:nodes\nnobody-token,nobody,2,\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            &format!("--token-auth-file={}", tokens.display()),
            &format!("--kubelet-client-certificate={}", cert.display()),
            &format!("--kubelet-client-key={}", key.display()),
            "--disable-admission-plugins=ServiceAccount",
        ],
        Some("test-admin-token"),
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let kubeconfig = s.user_kubeconfig("node-w", "    token: node-w-token\n");
    let k = TestKubelet::start(
        &kubeconfig,
        &ctd,
        "node-w",
        &[
            "--anonymous-auth=false",
            "--authentication-token-webhook",
            "--authorization-mode=Webhook",
            &format!("--client-ca-file={}", ca.display()),
        ],
    )
    .await;
    node_ready(&c, "node-w").await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
        "spec": {"nodeName": "node-w", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo hi-there; exec sleep 3600"]}]}})).await;
    wait_phase(&c, "talker", "Running", 60).await;
    // Through the apiserver (its client certificate, authorized by SAR as system:masters).
    assert_eq!(s.kubectl_ok(&["logs", "talker"], None).trim(), "hi-there");
    assert_eq!(exec(&s, "talker", &["echo", "ok"]).trim(), "ok");
    // Directly: anonymous is refused, an unprivileged token is forbidden.
    let kubelet = Client::new(k.port);
    let r = kubelet.get("/pods").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = Client::new(k.port)
        .with_token(Some("nobody-token"))
        .get("/pods")
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("user=nobody, verb=get, resource=nodes, subresource=pods"),
        "{}",
        r.text()
    );
    let r = Client::new(k.port)
        .with_token(Some("test-admin-token"))
        .get("/pods")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("talker"));
    // The kubelet's own healthz stays open.
    assert_eq!(Client::new(k.port).get("/healthz").await.status, 200);
}

/// Pod fields the kubelet acts on: `readinessGates` hold Ready (ReadinessGatesNotReady)
/// until their condition, set by someone else, is True; `setHostnameAsFQDN` gives the
/// pod's kernel its fully qualified name; a pod for another OS is refused; local
/// ephemeral storage limits evict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_fqdn_hostname_and_os() {
    let n = node("node-g").await;
    let c = n.c.clone();
    c.create(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated"},
            "spec": {"nodeName": "node-g", "hostname": "web", "subdomain": "sub",
                "setHostnameAsFQDN": true,
                "readinessGates": [{"conditionType": "example.com/ready"}],
                "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}),
    )
    .await;
    let ready = |want: &'static str| {
        let c = c.clone();
        async move {
            let p = pod(&c, "default", "gated").await;
            let r = p["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            (condition(&p, "ContainersReady") == "True" && r["status"] == want).then_some(r)
        }
    };
    let r = wait_for(
        "gated: containers ready, pod not",
        Duration::from_secs(60),
        || ready("False"),
    )
    .await;
    assert_eq!(r["reason"], "ReadinessGatesNotReady");
    assert_eq!(
        r["message"],
        "corresponding condition of pod readiness gate \"example.com/ready\" does not exist."
    );
    assert_eq!(
        exec(&n.s, "gated", &["hostname"]).trim(),
        "web.sub.default.svc.cluster.local"
    );
    let gate = |status: &str| {
        format!(
            r#"{{"status":{{"conditions":[{{"type":"example.com/ready","status":"{status}"}}]}}}}"#
        )
    };
    n.s.kubectl_ok(
        &[
            "patch",
            "pod",
            "gated",
            "--subresource=status",
            "-p",
            &gate("False"),
        ],
        None,
    );
    wait_for(
        "the gate's status in the message",
        Duration::from_secs(30),
        || async {
            let r = ready("False").await?;
            (r["message"]
            == "the status of pod readiness gate \"example.com/ready\" is not \"True\", but False")
            .then_some(())
        },
    )
    .await;
    n.s.kubectl_ok(
        &[
            "patch",
            "pod",
            "gated",
            "--subresource=status",
            "-p",
            &gate("True"),
        ],
        None,
    );
    wait_for("gated Ready", Duration::from_secs(30), || ready("True")).await;
    // A Windows pod is not for this node.
    c.create(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "windows"},
            "spec": {"nodeName": "node-g", "os": {"name": "windows"},
                "containers": [{"name": "c", "image": BUSYBOX}]}}),
    )
    .await;
    let p = wait_phase(&c, "windows", "Failed", 30).await;
    assert_eq!(
        p["status"]["reason"], "PodOSNotSupported",
        "{}",
        p["status"]
    );
    assert_eq!(
        p["status"]["message"],
        "Failed to admit pod as the OS field doesn't match node OS"
    );
    // Local ephemeral storage: an emptyDir past its sizeLimit and a container past its
    // ephemeral-storage limit get their pods evicted, with upstream's messages.
    let writer = |name: &str, path: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "node-g", "restartPolicy": "Never",
                "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}],
                "containers": [{"name": "c", "image": BUSYBOX,
                    "command": ["sh", "-c", format!("dd if=/dev/zero of={path} bs=1M count=4; sleep 3600")],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]}})
    };
    c.create(
        "/api/v1/namespaces/default/pods",
        &writer("fills-volume", "/scratch/f"),
    )
    .await;
    let mut limited = writer("fills-layer", "/tmp/f");
    limited["spec"]["containers"][0]["resources"] = json!({"limits": {"ephemeral-storage": "1Mi"}});
    c.create("/api/v1/namespaces/default/pods", &limited).await;
    for (name, message) in [
        (
            "fills-volume",
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ",
        ),
        (
            "fills-layer",
            "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ",
        ),
    ] {
        let p = wait_phase(&c, name, "Failed", 40).await;
        assert_eq!(p["status"]["reason"], "Evicted", "{}", p["status"]);
        assert_eq!(p["status"]["message"], message);
    }
}
