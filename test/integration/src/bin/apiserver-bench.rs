//! kube-apiserver benchmark (a command, not a test): starts the real binary (embedded
//! store, then real etcd), and measures
//!   1. N concurrent clients creating pods (throughput, POST p50/p99),
//!   2. GET of single pods and LIST of all pods, namespace and cluster scope (p50/p99),
//!   3. M watchers that must each receive every event of a burst of pod creations,
//!   4. one client writing alone, one request at a time, as `kubectl` does: create, patch,
//!      delete, each followed by a consistent LIST (a fresh read through the watch cache);
//!      on etcd, next to a raw etcd write through its gRPC gateway,
//!
//! printing the apiserver's RSS after each phase. Run through `hack/bench-apiserver.sh`.
//! Environment: BENCH_PODS (10000), BENCH_CLIENTS (16), BENCH_WATCHERS (100),
//! BENCH_WATCH_EVENTS (1000), BENCH_SEQUENTIAL (200), BENCH_BACKENDS ("embedded,etcd").

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::etcd::Etcd;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A request; a path starting with `pb:` asks for protobuf, as client-go components do.
async fn send(conn: &mut Conn, method: &str, path: &str, body: Bytes) -> (u16, usize) {
    let (accept, path) = match path.strip_prefix("pb:") {
        Some(p) => ("application/vnd.kubernetes.protobuf", p),
        None => ("application/json", path),
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Full::new(body))
        .unwrap();
    let resp = conn.send_request(req).await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.len())
}

fn pod(name: &str) -> Bytes {
    Bytes::from(
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": (name.len() % 7).to_string()}},
            "spec": {"containers": [{"name": "c", "image": "registry.test/app:1.0", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}})
        .to_string(),
    )
}

struct Stats(Vec<f64>);

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        integration_tests::percentile(&self.0, p)
    }

    fn line(&self, what: &str, total: Duration) {
        println!(
            "  {what:<34} n={:<6} {:>9.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.0.len(),
            self.0.len() as f64 / total.as_secs_f64(),
            self.pct(0.50),
            self.pct(0.99)
        );
    }
}

/// Runs `total` requests over `clients` keep-alive connections; returns latencies (ms).
async fn load<F>(client: &Client, clients: usize, total: usize, make: F) -> (Stats, Duration)
where
    F: Fn(usize) -> (&'static str, String, Bytes) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, make, next) = (client.clone(), make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return lat;
                }
                let (method, path, body) = make(i);
                let t = Instant::now();
                let (status, _) = send(&mut conn, method, &path, body).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(status < 300, "{method} {path}: HTTP {status}");
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (Stats(all), started.elapsed())
}

async fn bench(backend: &str, s: &TestApiServer) {
    let pods = env("BENCH_PODS", 10_000);
    let clients = env("BENCH_CLIENTS", 16);
    let watchers = env("BENCH_WATCHERS", 100);
    let burst = env("BENCH_WATCH_EVENTS", 1000);
    let c = &s.client;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    assert_eq!(
        c.send_json("POST", "/api/v1/namespaces", &ns).await.status,
        201
    );
    println!("\n== {backend}: {pods} pods, {clients} clients, {watchers} watchers");
    println!(
        "  apiserver RSS at start            {:>7.1} MiB",
        integration_tests::rss_mib(s.pid())
    );

    let (st, took) = load(c, clients, pods, |i| {
        (
            "POST",
            "/api/v1/namespaces/bench/pods".into(),
            pod(&format!("p-{i}")),
        )
    })
    .await;
    st.line("create pod (POST)", took);
    println!(
        "  apiserver RSS after creates       {:>7.1} MiB",
        integration_tests::rss_mib(s.pid())
    );

    let (st, took) = load(c, clients, 5000.min(pods * 2), move |i| {
        (
            "GET",
            format!("/api/v1/namespaces/bench/pods/p-{}", (i * 7919) % pods),
            Bytes::new(),
        )
    })
    .await;
    st.line("get pod (GET)", took);
    for (what, path) in [
        (
            "list all pods, namespace (rv=0)",
            "/api/v1/namespaces/bench/pods?resourceVersion=0",
        ),
        ("list all pods, namespace", "/api/v1/namespaces/bench/pods"),
        ("list all pods, cluster", "/api/v1/pods"),
        (
            "list all pods, namespace (rv=0, protobuf)",
            "pb:/api/v1/namespaces/bench/pods?resourceVersion=0",
        ),
        (
            "list by label, cluster",
            "/api/v1/pods?labelSelector=shard%3D3",
        ),
    ] {
        let (st, took) = load(c, 4.min(clients), 40, move |_| {
            ("GET", path.into(), Bytes::new())
        })
        .await;
        st.line(what, took);
    }
    println!(
        "  apiserver RSS after lists         {:>7.1} MiB",
        integration_tests::rss_mib(s.pid())
    );

    // Watchers from the current revision: each must see every event of the burst.
    let rv =
        c.get("/api/v1/namespaces/bench/pods?limit=1").await.json()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
    let mut rxs = Vec::new();
    for _ in 0..watchers {
        rxs.push(
            c.watch(&format!(
                "/api/v1/namespaces/bench/pods?watch=1&resourceVersion={rv}"
            ))
            .await,
        );
    }
    let started = Instant::now();
    let receivers: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| {
            tokio::spawn(async move {
                let mut n = 0;
                while n < burst {
                    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                        Ok(Some(_)) => n += 1,
                        _ => break,
                    }
                }
                (n, started.elapsed())
            })
        })
        .collect();
    let (st, took) = load(c, clients, burst, move |i| {
        (
            "POST",
            "/api/v1/namespaces/bench/pods".into(),
            pod(&format!("w-{i}")),
        )
    })
    .await;
    st.line("create pod while watched", took);
    let mut complete = 0;
    let mut last = Duration::ZERO;
    for r in receivers {
        let (n, at) = r.await.unwrap();
        if n == burst {
            complete += 1;
        }
        last = last.max(at);
    }
    println!(
        "  watch fan-out: {complete}/{watchers} watchers got all {burst} events; {:.0} events/s delivered, last in {:.2} s",
        (complete * burst) as f64 / last.as_secs_f64(),
        last.as_secs_f64()
    );
    println!(
        "  apiserver RSS at end              {:>7.1} MiB",
        integration_tests::rss_mib(s.pid())
    );
}

/// One request timed (ms), then a consistent LIST timed (ms).
async fn write_then_list(
    conn: &mut Conn,
    method: &str,
    path: &str,
    ct: &str,
    body: String,
) -> (f64, f64) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    conn.ready().await.expect("connection");
    let t = Instant::now();
    let resp = conn.send_request(req).await.expect("write");
    let status = resp.status().as_u16();
    resp.into_body().collect().await.expect("body");
    assert!(status < 300, "{method} {path}: HTTP {status}");
    let write = t.elapsed().as_secs_f64() * 1000.0;
    conn.ready().await.expect("connection");
    let t = Instant::now();
    let (status, _) = send(
        conn,
        "GET",
        "/api/v1/namespaces/bench/configmaps?limit=1",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, 200);
    (write, t.elapsed().as_secs_f64() * 1000.0)
}

/// Sequential single-client writes: each write then a consistent LIST, one at a time.
async fn sequential(s: &TestApiServer) {
    let n = env("BENCH_SEQUENTIAL", 200);
    let mut conn = s.client.connect().await;
    let cms = "/api/v1/namespaces/bench/configmaps";
    let (mut create, mut patch, mut delete, mut list) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..n {
        let name = format!("seq-{i}");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}});
        let path = format!("{cms}/{name}");
        let steps = [
            ("POST", cms, "application/json", cm.to_string(), &mut create),
            (
                "PATCH",
                path.as_str(),
                "application/merge-patch+json",
                r#"{"data":{"a":"2"}}"#.to_string(),
                &mut patch,
            ),
            (
                "DELETE",
                path.as_str(),
                "application/json",
                String::new(),
                &mut delete,
            ),
        ];
        for (method, p, ct, body, out) in steps {
            let (w, l) = write_then_list(&mut conn, method, p, ct, body).await;
            out.push(w);
            list.push(l);
        }
    }
    let total = started.elapsed();
    println!("  sequential, one client ({n} of each, each followed by a consistent LIST):");
    for (what, v) in [
        ("create", create),
        ("patch", patch),
        ("delete", delete),
        ("consistent LIST after a write", list),
    ] {
        Stats(v).line(what, total);
    }
}

/// An HTTP/1.1 connection to etcd's client port (its gRPC gateway and `/metrics`), and the
/// address to name as its host.
async fn etcd_http(
    endpoint: &str,
) -> (String, hyper::client::conn::http1::SendRequest<Full<Bytes>>) {
    let addr = endpoint.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("etcd");
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("etcd HTTP");
    tokio::spawn(conn);
    (addr, send)
}

/// Raw etcd writes, one at a time, through etcd's gRPC gateway: what a write costs here.
async fn raw_etcd_puts(endpoint: &str) {
    use base64::Engine;
    let n = env("BENCH_SEQUENTIAL", 200);
    let (addr, mut send) = etcd_http(endpoint).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut lat = Vec::new();
    let started = Instant::now();
    for i in 0..n {
        let body = json!({"key": b64(&format!("/bench-raw/{i}")), "value": b64("x")}).to_string();
        let req = Request::builder()
            .method("POST")
            .uri("/v3/kv/put")
            .header("host", addr.as_str())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        send.ready().await.expect("etcd connection");
        let t = Instant::now();
        let resp = send.send_request(req).await.expect("put");
        assert_eq!(resp.status().as_u16(), 200);
        resp.into_body().collect().await.expect("body");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Stats(lat).line("raw etcd put (gRPC gateway)", started.elapsed());
}

/// etcd's gRPC calls served so far, by method (its `grpc_server_handled_total`).
async fn etcd_calls(endpoint: &str) -> std::collections::BTreeMap<String, f64> {
    let (addr, mut send) = etcd_http(endpoint).await;
    let req = Request::builder()
        .uri("/metrics")
        .header("host", addr.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let body = send.send_request(req).await.expect("etcd metrics");
    let text = body.into_body().collect().await.expect("body").to_bytes();
    let mut calls = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&text).lines() {
        let Some(rest) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let method = rest
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .unwrap_or_default();
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        *calls.entry(method.to_string()).or_insert(0.0) += n;
    }
    calls
}

#[tokio::main]
async fn main() {
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "embedded,etcd".into());
    for backend in backends.split(',') {
        match backend {
            "embedded" => {
                let s = TestApiServer::start(
                    None,
                    &[
                        "--max-requests-inflight=0",
                        "--max-mutating-requests-inflight=0",
                    ],
                )
                .await;
                bench("embedded store", &s).await;
                sequential(&s).await;
            }
            "etcd" => {
                let etcd = Etcd::start();
                let s = TestApiServer::start(
                    Some(&etcd.endpoint),
                    &[
                        "--max-requests-inflight=0",
                        "--max-mutating-requests-inflight=0",
                    ],
                )
                .await;
                bench("etcd 3.4", &s).await;
                let before = etcd_calls(&etcd.endpoint).await;
                sequential(&s).await;
                let after = etcd_calls(&etcd.endpoint).await;
                let writes = 3.0 * env("BENCH_SEQUENTIAL", 200) as f64;
                let per_write: Vec<String> = after
                    .iter()
                    .map(|(m, n)| (m, n - before.get(m).copied().unwrap_or(0.0)))
                    .filter(|(_, d)| *d > 0.0)
                    .map(|(m, d)| format!("{m} {:.2}", d / writes))
                    .collect();
                println!(
                    "    etcd calls per sequential write: {}",
                    per_write.join(", ")
                );
                raw_etcd_puts(&etcd.endpoint).await;
            }
            other => eprintln!("unknown backend {other}"),
        }
    }
}
