//! Watch fan-out: a watcher that stops reading is dropped by the server and does not
//! stall the others; the legacy `/watch/` paths serve the same streams.

use integration_tests::apiserver::TestApiServer;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn slow_watcher_is_dropped_without_stalling_others() {
    let s = TestApiServer::start(None, &[]).await;
    let c = s.client.clone();
    // A raw HTTP/1.1 watch whose client never reads the body.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    let tls = integration_tests::client::tls_connector()
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut slow = tls;
    slow.write_all(format!("GET {CM}?watch=1 HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut fast = c.watch(&format!("{CM}?watch=1")).await;
    // ~25 MB of events: far more than socket buffers plus the per-watcher queue.
    let payload = "x".repeat(100 * 1024);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (c, payload) = (c.clone(), payload.clone());
            tokio::spawn(async move {
                for i in (w..250).step_by(4) {
                    let r = c.send_json("POST", CM, &json!({"metadata": {"name": format!("big-{i:03}")}, "data": {"p": payload}})).await;
                    assert_eq!(r.status, 201);
                }
            })
        })
        .collect();
    let mut seen = 0;
    while seen < 250 {
        let e = tokio::time::timeout(Duration::from_secs(20), fast.recv())
            .await
            .expect("fast watcher stalled")
            .expect("fast watch ended");
        if e["type"] == "ADDED" {
            seen += 1;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    // The slow stream was cut by the server: once read, it ends (the chunked body's
    // terminator) before carrying every event.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.ends_with(b"\r\n0\r\n\r\n") {
                return true;
            }
        }
    })
    .await;
    assert_eq!(
        ended,
        Ok(true),
        "the stalled watch should have been closed by the server"
    );
    let delivered = String::from_utf8_lossy(&got)
        .matches("\"type\":\"ADDED\"")
        .count();
    assert!(
        delivered < 250,
        "the slow watcher got all {delivered} events; it was never dropped"
    );
}

#[tokio::test]
async fn legacy_watch_paths() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let mut ns_scoped = c.watch("/api/v1/watch/namespaces/default/configmaps").await;
    let mut all = c.watch("/api/v1/watch/configmaps").await;
    let mut one = c
        .watch("/api/v1/watch/namespaces/default/configmaps/target")
        .await;
    for name in ["other", "target"] {
        assert_eq!(
            c.send_json("POST", CM, &json!({"metadata": {"name": name}}))
                .await
                .status,
            201
        );
    }
    for rx in [&mut ns_scoped, &mut all] {
        let mut names = Vec::new();
        while names.len() < 2 {
            let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            if e["type"] == "ADDED" && e["object"]["metadata"]["namespace"] == "default" {
                names.push(
                    e["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
        assert_eq!(names, vec!["other", "target"]);
    }
    let e = tokio::time::timeout(Duration::from_secs(10), one.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("target"))
    );
}

#[tokio::test]
async fn watch_timeout_and_health_endpoints() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    // timeoutSeconds ends the stream on time.
    let started = std::time::Instant::now();
    let mut rx = c.watch(&format!("{CM}?watch=1&timeoutSeconds=1")).await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "watch with timeoutSeconds=1 did not end");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Health endpoints as upstream: plain ok, verbose per-check lines, single checks.
    assert_eq!(&c.get("/readyz").await.body[..], b"ok");
    let verbose = String::from_utf8(c.get("/readyz?verbose").await.body.to_vec()).unwrap();
    for line in [
        "[+]ping ok",
        "[+]etcd ok",
        "[+]informer-sync ok",
        "readyz check passed",
    ] {
        assert!(verbose.contains(line), "{verbose}");
    }
    let excluded =
        String::from_utf8(c.get("/livez?verbose&exclude=etcd").await.body.to_vec()).unwrap();
    assert!(excluded.contains("[+]etcd excluded: ok"), "{excluded}");
    assert_eq!(c.get("/healthz/etcd").await.status, 200);
    assert_eq!(c.get("/livez/nonexistent").await.status, 404);
    let v = c.get("/version").await.json();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("35"))
    );
    // Metrics under upstream's names and labels.
    c.get(&format!("{CM}?limit=5")).await;
    let m = String::from_utf8(c.get("/metrics").await.body.to_vec()).unwrap();
    for needle in [
        r#"apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 1"#,
        r#"apiserver_storage_objects{resource="namespaces"} 4"#,
        "apiserver_request_duration_seconds_bucket{",
        "apiserver_current_inflight_requests{request_kind=\"readOnly\"}",
        "process_resident_memory_bytes ",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
    // Discovery lists what kubectl needs.
    let core = c.get("/api/v1").await.json();
    let pods = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap()
        .clone();
    assert_eq!(
        (
            pods["namespaced"].as_bool(),
            pods["kind"].as_str(),
            pods["shortNames"][0].as_str()
        ),
        (Some(true), Some("Pod"), Some("po"))
    );
    let groups = c.get("/apis").await.json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    // Upstream's order: the aggregator's own group, then apps and events; coordination
    // after scheduling.
    assert_eq!(
        &names[..3],
        ["apiregistration.k8s.io", "apps", "events.k8s.io"]
    );
    let pos = |g: &str| names.iter().position(|n| *n == g).unwrap();
    assert!(pos("scheduling.k8s.io") < pos("coordination.k8s.io"));
    let autoscaling = c.get("/apis/autoscaling").await.json();
    assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
    assert_eq!(autoscaling["versions"][1]["version"], "v1");
}
