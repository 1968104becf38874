//! kube-proxy in iptables and nftables mode, each in a network namespace of its own with
//! the apiserver on that namespace's loopback and two HTTP backends on a veth
//! interface: ClusterIP load balancing over both endpoints, NodePort, REJECT for a
//! service without endpoints, ClientIP session affinity, endpoint removal, service
//! deletion, upstream's chain names, `/healthz` and `/metrics`.

use integration_tests::apiserver::TestApiServer;
use integration_tests::netns::{NetNs, run};
use integration_tests::wait_for;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP GET from inside the namespace (this thread's): Ok(body) or Err(message).
fn wget(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("not http")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let addr: std::net::SocketAddr = if host.contains(':') {
        host.parse().map_err(|e| format!("{e}"))?
    } else {
        format!("{host}:80").parse().map_err(|e| format!("{e}"))?
    };
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let (head, body) = buf.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    if !head.contains(" 200 ") {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    Ok(body.trim().to_string())
}

fn slice(ips: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-x"})).collect::<Vec<_>>()})
}

fn proxy_mode(mode: &str) {
    let ns = NetNs::new("kp");
    ns.enter();
    // The node's "uplink": a veth pair inside the namespace carrying its addresses.
    NetNs::add_uplink(&["10.200.1.1/24", "10.200.1.2/24"]);
    let www = tempfile::tempdir().unwrap();
    let mut procs = Kill(Vec::new());
    for (i, ip) in ["10.200.1.1", "10.200.1.2"].iter().enumerate() {
        let dir = www.path().join(format!("b{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), format!("backend-{i}\n")).unwrap();
        procs.0.push(
            Command::new("busybox")
                .args(["httpd", "-f", "-p", &format!("{ip}:8080"), "-h"])
                .arg(&dir)
                .spawn()
                .unwrap(),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = TestApiServer::start(None, &[]).await;
        let c = s.client.clone();
        let healthz = integration_tests::free_port();
        let metrics = integration_tests::free_port();
        let log = std::fs::File::create(s.dir.path().join("kube-proxy.log")).unwrap();
        procs.0.push(
            Command::new(integration_tests::binary("kube-proxy"))
                .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
                .arg(format!("--proxy-mode={mode}"))
                .args(["--hostname-override=node-x", "--cluster-cidr=10.244.0.0/16", "--iptables-min-sync-period=0s"])
                .arg(format!("--healthz-bind-address=127.0.0.1:{healthz}"))
                .arg(format!("--metrics-bind-address=127.0.0.1:{metrics}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let svc = c
            .create("/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
            .await;
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
        let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        c.create("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", &slice(&["10.200.1.1", "10.200.1.2"])).await;
        let empty = c
            .create("/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}))
            .await;
        let empty_ip = empty["spec"]["clusterIP"].as_str().unwrap().to_string();
        // Load balancing over both endpoints through the cluster IP.
        let url = format!("http://{ip}/index.html");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while let Err(e) = wget(&url) {
            if std::time::Instant::now() > deadline {
                let rules = if mode == "iptables" { run(&["iptables-save"]) } else { run(&["nft", "list", "ruleset"]) };
                let log = std::fs::read_to_string(s.dir.path().join("kube-proxy.log")).unwrap_or_default();
                panic!("cluster IP {url} does not answer: {e}\n{rules}\n--- kube-proxy log ---\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            seen.insert(wget(&url).unwrap());
            if seen.len() == 2 {
                break;
            }
        }
        assert_eq!(seen.len(), 2, "both backends answer: {seen:?}");
        // NodePort on the node's address.
        let np = wget(&format!("http://10.200.1.1:{node_port}/index.html")).unwrap();
        assert!(np.starts_with("backend-"), "{np}");
        // No endpoints: refused at once (once the proxy has programmed that service).
        let empty_url = format!("http://{empty_ip}/");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let err = wget(&empty_url).unwrap_err();
            if err.contains("refused") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{err}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Upstream's names.
        let rules = if mode == "iptables" {
            run(&["iptables-save"])
        } else {
            run(&["nft", "list", "table", "ip", "kube-proxy"])
        };
        let hash = proxy::iptables::hash16("default/web:httptcp");
        if mode == "iptables" {
            assert!(rules.contains(&format!("KUBE-SVC-{hash}")), "{rules}");
            assert!(rules.contains("\"default/web:http cluster IP\""), "{rules}");
            assert!(rules.contains("-A KUBE-NODEPORTS"), "{rules}");
            assert!(rules.contains("\"default/empty has no endpoints\""), "{rules}");
        } else {
            assert!(rules.contains(&format!("service-{}-default/web/tcp/http", &hash[..8])), "{rules}");
            assert!(rules.contains("map service-nodeports"), "{rules}");
        }
        // ClientIP affinity: one backend from then on.
        let r = c
            .merge_patch("/api/v1/namespaces/default/services/web", &json!({"spec": {"sessionAffinity": "ClientIP"}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        // Wait until the affinity rules are in place before asking.
        let marker = if mode == "iptables" { "--rcheck" } else { "affinity-" };
        wait_for("affinity rules programmed", Duration::from_secs(20), || async {
            let rules = if mode == "iptables" { run(&["iptables-save", "-t", "nat"]) } else { run(&["nft", "list", "table", "ip", "kube-proxy"]) };
            rules.contains(marker).then_some(())
        })
        .await;
        let first = wget(&url).unwrap();
        for _ in 0..10 {
            assert_eq!(wget(&url).unwrap(), first, "sticky to one endpoint");
        }
        // Another service's change is synced without forgetting the affinity.
        c.create("/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "other"}, "spec": {"ports": [{"port": 81, "targetPort": 8080}]}}))
            .await;
        wait_for("the other service programmed", Duration::from_secs(20), || async {
            let rules = if mode == "iptables" { run(&["iptables-save"]) } else { run(&["nft", "list", "table", "ip", "kube-proxy"]) };
            rules.contains(" 81 ").then_some(())
        })
        .await;
        if mode == "nftables" {
            // The client's entry is still in the affinity set (a replaced table would have
            // lost it, and the next request would pick an endpoint anew).
            let sets = run(&["nft", "list", "sets", "ip"]);
            assert!(sets.contains("elements = { 10.200.1.1 "), "{sets}");
        }
        for _ in 0..10 {
            assert_eq!(wget(&url).unwrap(), first, "still sticky after an unrelated sync");
        }
        // An endpoint that goes gets no more traffic.
        let r = c
            .send_json("PUT", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc", &{
                let cur = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc").await.json();
                let mut s = slice(&["10.200.1.2"]);
                s["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
                s
            })
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        wait_for("only backend-1", Duration::from_secs(20), || async {
            (0..6).all(|_| wget(&url).as_deref() == Ok("backend-1")).then_some(())
        })
        .await;
        // Health and metrics.
        let health = wget(&format!("http://127.0.0.1:{healthz}/healthz")).unwrap();
        assert!(health.contains("lastUpdated"), "{health}");
        let m = wget(&format!("http://127.0.0.1:{metrics}/metrics")).unwrap();
        assert!(m.contains("kubeproxy_sync_proxy_rules_duration_seconds_count"), "{m}");
        {
            // The endpoint changes above were partial syncs: only the changed service's
            // chains were rewritten, and traffic followed them.
            let partial = m
                .lines()
                .find_map(|l| l.strip_prefix("kubeproxy_sync_partial_proxy_rules_duration_seconds_count "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            assert!(partial > 0, "{m}");
        }
        // UDP: a flow stays NATed to its endpoint until conntrack forgets it. When that
        // endpoint leaves the slice (its server still answers), kube-proxy deletes the
        // entry and the same client socket reaches the remaining endpoint.
        for (i, ip) in ["10.200.1.1", "10.200.1.2"].iter().enumerate() {
            let sock = std::net::UdpSocket::bind(format!("{ip}:5353")).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(format!("udp-{i}").as_bytes(), from);
                }
            });
        }
        let dns = c
            .create("/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "dns"}, "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]}}))
            .await;
        let dns_ip = dns["spec"]["clusterIP"].as_str().unwrap().to_string();
        let udp_slice = |ips: &[&str]| json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "dns-abc", "labels": {"kubernetes.io/service-name": "dns"}},
            "addressType": "IPv4", "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>()});
        c.create("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", &udp_slice(&["10.200.1.1", "10.200.1.2"])).await;
        let client = std::net::UdpSocket::bind("10.200.1.1:40053").unwrap();
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let ask = || {
            client.send_to(b"q", format!("{dns_ip}:53")).ok()?;
            let mut buf = [0u8; 64];
            let (n, _) = client.recv_from(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        let first = wait_for("UDP service answers", Duration::from_secs(20), || async { ask() }).await;
        for _ in 0..5 {
            assert_eq!(ask().as_deref(), Some(first.as_str()), "one flow, one endpoint");
        }
        let keep = if first == "udp-0" { "10.200.1.2" } else { "10.200.1.1" };
        let cur = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/dns-abc").await.json();
        let mut next = udp_slice(&[keep]);
        next["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
        let r = c.send_json("PUT", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/dns-abc", &next).await;
        assert_eq!(r.status, 200, "{}", r.text());
        wait_for("the flow moves to the remaining endpoint", Duration::from_secs(20), || async {
            ask().filter(|a| *a != first).map(|_| ())
        })
        .await;
        // A deleted service leaves no rules behind.
        let r = c.request("DELETE", "/api/v1/namespaces/default/services/web", "application/json", "").await;
        assert_eq!(r.status, 200);
        wait_for("rules of the deleted service gone", Duration::from_secs(20), || async {
            let rules = if mode == "iptables" { run(&["iptables-save", "-t", "nat"]) } else { run(&["nft", "list", "table", "ip", "kube-proxy"]) };
            (!rules.contains("default/web")).then_some(())
        })
        .await;
        assert!(wget(&url).is_err());
        // `kube-proxy --cleanup` (the proxy stopped first) leaves no rule of either mode.
        let running = procs.0.pop().unwrap();
        drop(Kill(vec![running]));
        let out = Command::new(integration_tests::binary("kube-proxy"))
            .arg("--cleanup")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let left = run(&["iptables-save"]);
        assert!(!left.contains("KUBE-"), "{left}");
        let tables = run(&["nft", "list", "tables"]);
        assert!(!tables.contains("kube-proxy"), "{tables}");
    });
}

#[test]
fn iptables_mode() {
    proxy_mode("iptables");
}

#[test]
fn nftables_mode() {
    proxy_mode("nftables");
}
