//! End to end on two nodes (see `integration_tests::cluster`): our apiserver,
//! controller-manager, scheduler, and per node containerd + kubelet + kube-proxy. A
//! Deployment of busybox `httpd` behind a NodePort Service: reachable over its ClusterIP
//! from a pod on the other node and over the NodePort on each node's IP; scaling to 6
//! spreads the pods; a rolling update drops no request of a client loop; deleting a
//! node's pods gets them replaced. Once with kube-proxy in iptables mode, once nftables.

use integration_tests::cluster::TestCluster;
use integration_tests::node::BUSYBOX;
use integration_tests::wait_for;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn get(addr: &str, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let a: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    match buf.split_once("\r\n\r\n") {
        Some((h, b)) if h.contains(" 200 ") => Ok(b.trim().to_string()),
        _ => Err(format!("bad response: {buf:?}")),
    }
}

fn deployment(replicas: u32, version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 15
      containers:
      - name: web
        image: {BUSYBOX}
        env: [{{name: VERSION, value: "{version}"}}]
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /index.html, port: 8080}}, periodSeconds: 1}}
        lifecycle: {{preStop: {{sleep: {{seconds: 5}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

async fn available(c: &integration_tests::client::Client, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let d = c
            .get("/apis/apps/v1/namespaces/default/deployments/web")
            .await
            .json();
        let st = &d["status"];
        if st["availableReplicas"] == want
            && st["updatedReplicas"] == want
            && st["replicas"] == want
        {
            return;
        }
        if std::time::Instant::now() > deadline {
            let pods = c.get("/api/v1/namespaces/default/pods").await.json();
            let summary: Vec<String> = pods["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} node={} phase={} status={}",
                        p["metadata"]["name"],
                        p["spec"]["nodeName"],
                        p["status"]["phase"],
                        p["status"]["containerStatuses"]
                    )
                })
                .collect();
            panic!(
                "{want} available replicas: deployment status {st}\npods:\n{}",
                summary.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pods_by_node(list: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for p in list["items"].as_array().into_iter().flatten() {
        if p["metadata"]["deletionTimestamp"].is_null() {
            *m.entry(
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
        }
    }
    m
}

fn e2e(mode: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cl = TestCluster::start(2, mode).await;
        let s = &cl.apiserver;
        let c = s.client.clone();
        for n in ["node-0", "node-1"] {
            wait_for(&format!("{n} Ready"), Duration::from_secs(60), || async {
                let n = c.get(&format!("/api/v1/nodes/{n}")).await.json();
                n["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                    .then_some(())
            })
            .await;
        }
        s.kubectl_ok(&["apply", "-f", "-"], Some(&deployment(3, "1")));
        available(&c, 3).await;
        let svc = c.get("/api/v1/namespaces/default/services/web").await.json();
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
        let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        // A client pod on node-1 reaches the service's cluster IP (pods on both nodes answer).
        s.kubectl_ok(&["apply", "-f", "-"], Some(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  nodeName: node-1\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: {BUSYBOX}, command: [sleep, \"3600\"]}}\n")));
        wait_for("client running", Duration::from_secs(60), || async {
            (c.get("/api/v1/namespaces/default/pods/client").await.json()["status"]["phase"] == "Running").then_some(())
        })
        .await;
        let fetch = format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80");
        let mut hosts = BTreeSet::new();
        let mut last = String::new();
        for _ in 0..30 {
            let (ok, out, err) = s.kubectl(&["exec", "client", "--", "sh", "-c", &fetch], None);
            match out.split_once("\r\n\r\n") {
                Some((_, body)) if ok => {
                    hosts.insert(body.trim().to_string());
                }
                _ => last = format!("{ok} {out:?} {err}"),
            }
            if hosts.len() >= 2 {
                break;
            }
        }
        assert!(hosts.len() >= 2, "answers from several pods through the cluster IP: {hosts:?} (last failure: {last})");
        // By name through the cluster DNS (the pod's resolv.conf points at kube-dns).
        let resolv = s.kubectl_ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"], None);
        assert!(
            resolv.contains("nameserver 10.0.0.10") && resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
            "{resolv}\nconfigz: {}",
            s.kubectl(&["get", "--raw", "/api/v1/nodes/node-1/proxy/configz"], None).1
        );
        // (busybox-static's `wget -T` crashes in glibc; without it, it is fine.)
        let (ok, out, err) = s.kubectl(
            &["exec", "client", "--", "wget", "-qO-", "http://web.default.svc.cluster.local/index.html"],
            None,
        );
        assert!(ok && out.trim().starts_with("web-"), "wget by service name: {out} {err}");
        let (ok, out, err) = s.kubectl(&["exec", "client", "--", "wget", "-qO-", "http://web/index.html"], None);
        assert!(ok && out.trim().starts_with("web-"), "wget by short name (search path): {out} {err}");
        let (ok, out, err) = s.kubectl(&["exec", "client", "--", "nslookup", "web.default.svc.cluster.local"], None);
        assert!(ok && out.contains(&ip), "nslookup by name: {out} {err}");
        // busybox's nslookup tries every search domain and fails on the misses; the hit
        // through `default.svc.cluster.local` is what counts.
        let (_, out, err) = s.kubectl(&["exec", "client", "--", "nslookup", "web"], None);
        assert!(out.contains("web.default.svc.cluster.local") && out.contains(&ip), "nslookup web (search path): {out} {err}");
        let (ok, out, err) = s.kubectl(&["exec", "client", "--", "nslookup", "nope.default.svc.cluster.local"], None);
        assert!(!ok || out.contains("NXDOMAIN") || err.contains("NXDOMAIN"), "unknown names do not resolve: {out} {err}");
        // NodePort on each node's address.
        for n in &cl.nodes {
            let body = wait_for("NodePort answers", Duration::from_secs(20), || async {
                get(&format!("{}:{node_port}", n.ip), "/index.html").ok()
            })
            .await;
            assert!(body.starts_with("web-"), "{body}");
        }
        // Scaling spreads the pods over both nodes.
        s.kubectl_ok(&["scale", "deployment/web", "--replicas=6"], None);
        available(&c, 6).await;
        let by_node = pods_by_node(&c.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").await.json());
        assert!(by_node.values().all(|n| *n >= 2) && by_node.len() == 2, "spread: {by_node:?}");
        // A rolling update while a client keeps asking through the NodePort.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let target = format!("{}:{node_port}", cl.nodes[0].ip);
        let (st, t2) = (stop.clone(), target.clone());
        let ns = cl.cp.name.clone();
        let client = std::thread::spawn(move || {
            integration_tests::netns::NetNs::enter_by_name(&ns);
            let (mut ok, mut failed) = (0, Vec::new());
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                match get(&t2, "/index.html") {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        });
        s.kubectl_ok(&["apply", "-f", "-"], Some(&deployment(6, "2")));
        available(&c, 6).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = client.join().unwrap();
        assert!(ok > 20, "the client loop ran ({ok} answers)");
        assert!(failed.is_empty(), "{} of {} requests failed during the rollout: {:?}", failed.len(), ok + failed.len(), &failed[..failed.len().min(5)]);
        // Deleting one node's pods: they are replaced.
        s.kubectl_ok(&["delete", "pods", "-l", "app=web", "--field-selector", "spec.nodeName=node-0", "--wait=false"], None);
        available(&c, 6).await;
        let _ = target;
    });
}

#[test]
fn two_nodes_iptables() {
    e2e("iptables");
}

#[test]
fn two_nodes_nftables() {
    e2e("nftables");
}
