//! kube-scheduler benchmark (a command, not a test), modelled on upstream's
//! scheduler_perf: the real apiserver and scheduler binaries, BENCH_NODES fake nodes
//! (4 cpu, 32Gi, 110 pods, 10 zones), BENCH_INIT_PODS pods scheduled first, then
//! BENCH_PODS measured pods created by 16 clients. Workloads (BENCH_WORKLOADS):
//!   SchedulingBasic               plain pods (100m cpu, 64Mi)
//!   SchedulingPodAntiAffinity     pods with required anti-affinity on their hostname
//!                                 within groups of 5 (preferred in larger groups)
//!   SchedulingTopologySpreading   pods spread across zones (maxSkew 1, DoNotSchedule)
//! Prints pods/second over the measured pods and p50/p99 of the scheduler's attempt
//! latency (`scheduler_scheduling_attempt_duration_seconds`) and of create-to-bound.
//! Run through `hack/bench-scheduler.sh`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::component::{TestComponent, TestScheduler};
use serde_json::{Value, json};
use std::collections::HashMap;
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

async fn post(conn: &mut Conn, path: &str, body: Bytes) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("authorization", "Bearer test-admin-token")
        .body(Full::new(body))
        .unwrap();
    let resp = conn.send_request(req).await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        status < 300,
        "POST {path}: HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// Creates `total` objects over 16 keep-alive connections; returns each one's create time.
async fn create_all<F>(client: &Client, path: &'static str, total: usize, make: F) -> Vec<Instant>
where
    F: Fn(usize) -> Value + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, make, next) = (client.clone(), make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await;
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return done;
                }
                post(&mut conn, path, Bytes::from(make(i).to_string())).await;
                done.push((i, Instant::now()));
            }
        }));
    }
    let mut times = vec![Instant::now(); total];
    for t in tasks {
        for (i, at) in t.await.unwrap() {
            times[i] = at;
        }
    }
    times
}

fn node(i: usize) -> Value {
    let name = format!("node-{i}");
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
        "status": {"capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod(workload: &str, prefix: &str, i: usize) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{prefix}-{i}"), "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}});
    match workload {
        "SchedulingPodAntiAffinity" => {
            let group = format!("g{}", i / 5);
            p["metadata"]["labels"] = json!({"app": "bench", "group": group});
            p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}]}});
        }
        "SchedulingTopologySpreading" => {
            p["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "bench"}}}]);
        }
        _ => {}
    }
    p
}

/// A metric's value (sum over its label sets matching `filter`).
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A quantile from a histogram's cumulative buckets (linear within the bucket).
fn quantile(text: &str, name: &str, filter: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")) && l.contains(filter))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let want = total * q;
    let mut prev = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= want {
            if le.is_infinite() {
                return prev.0;
            }
            let frac = if count > prev.1 {
                (want - prev.1) / (count - prev.1)
            } else {
                0.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, count);
    }
    prev.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    integration_tests::percentile(v, p)
}

async fn run(workload: &str) {
    let (nodes, init, measured) = (
        env("BENCH_NODES", 5000),
        env("BENCH_INIT_PODS", 1000),
        env("BENCH_PODS", 10000),
    );
    let s = TestApiServer::start(
        None,
        &[
            "--max-requests-inflight=0",
            "--max-mutating-requests-inflight=0",
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
        ],
    )
    .await;
    let c = s.client.clone();
    let t = Instant::now();
    create_all(&c, "/api/v1/nodes", nodes, node).await;
    println!(
        "{workload}: {nodes} nodes created in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scheduler.yaml");
    std::fs::write(
        &config,
        format!("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: {}\n  qps: 5000\n  burst: 5000\nleaderElection:\n  leaderElect: false\n", s.kubeconfig().display()),
    )
    .unwrap();
    let sched = TestScheduler::start(
        &s.kubeconfig(),
        &[&format!("--config={}", config.display())],
    )
    .await;
    let wait_scheduled = |sched: &TestComponent, target: usize| {
        let port = sched.port;
        async move { wait_scheduled(port, target).await }
    };
    let wl = workload.to_string();
    create_all(&c, "/api/v1/namespaces/default/pods", init, move |i| {
        pod(&wl, "init", i)
    })
    .await;
    wait_scheduled(&sched, init).await;
    // The measured pods: creations run alongside the scheduler, as in scheduler_perf.
    let wl = workload.to_string();
    let started = Instant::now();
    let watcher = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut rx = c
                .watch("/api/v1/namespaces/default/pods?watch=1&resourceVersion=0")
                .await;
            let mut bound: HashMap<String, Instant> = HashMap::new();
            while bound.len() < measured {
                let Some(ev) = rx.recv().await else { break };
                let o = &ev["object"];
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                if name.starts_with("measured-") && o["spec"]["nodeName"].is_string() {
                    bound.entry(name.to_string()).or_insert_with(Instant::now);
                }
            }
            bound
        })
    };
    let created = create_all(&c, "/api/v1/namespaces/default/pods", measured, move |i| {
        pod(&wl, "measured", i)
    })
    .await;
    let create_secs = started.elapsed().as_secs_f64();
    let after = wait_scheduled(&sched, init + measured).await;
    let elapsed = started.elapsed().as_secs_f64();
    let bound = tokio::time::timeout(Duration::from_secs(60), watcher)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut e2e: Vec<f64> = bound
        .iter()
        .filter_map(|(name, at)| {
            let i: usize = name.strip_prefix("measured-")?.parse().ok()?;
            Some(at.saturating_duration_since(created[i]).as_secs_f64() * 1000.0)
        })
        .collect();
    let attempts = |m: &str| metric(m, "scheduler_schedule_attempts_total", "");
    let hist = "scheduler_scheduling_attempt_duration_seconds";
    let filter = "result=\"scheduled\"";
    println!(
        "{workload}: {measured} pods on {nodes} nodes in {elapsed:.2}s = {:.0} pods/s (pods created at {:.0}/s); attempts {}; attempt latency p50 {:.2} ms p99 {:.2} ms; create-to-bound p50 {:.0} ms p99 {:.0} ms; scheduler RSS {:.0} MiB",
        measured as f64 / elapsed,
        measured as f64 / create_secs,
        attempts(&after) as usize,
        quantile(&after, hist, filter, 0.50) * 1000.0,
        quantile(&after, hist, filter, 0.99) * 1000.0,
        pct(&mut e2e, 0.50),
        pct(&mut e2e, 0.99),
        integration_tests::rss_mib(sched.pid()),
    );

    // The scheduler alone: stopped, a backlog of pods created, then started again and
    // timed until every one of them is bound.
    drop(sched);
    let wl = workload.to_string();
    create_all(&c, "/api/v1/namespaces/default/pods", measured, move |i| {
        pod(&wl, "backlog", i)
    })
    .await;
    let started = Instant::now();
    let sched = TestScheduler::start(
        &s.kubeconfig(),
        &[&format!("--config={}", config.display())],
    )
    .await;
    let m = wait_scheduled(&sched, measured).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{workload}: backlog of {measured} pods scheduled by a fresh scheduler in {elapsed:.2}s (start and sync included) = {:.0} pods/s; attempt latency p50 {:.2} ms p99 {:.2} ms",
        measured as f64 / elapsed,
        quantile(&m, hist, filter, 0.50) * 1000.0,
        quantile(&m, hist, filter, 0.99) * 1000.0,
    );
}

/// Polls the scheduler's metrics until `target` pods were scheduled.
async fn wait_scheduled(port: u16, target: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let m = Client::new(port)
            .with_token(Some("test-admin-token"))
            .get("/metrics")
            .await
            .text();
        let done = metric(
            &m,
            "scheduler_schedule_attempts_total",
            "result=\"scheduled\"",
        ) as usize;
        if done >= target {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {target} pods scheduled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let workloads = std::env::var("BENCH_WORKLOADS").unwrap_or_else(|_| {
        "SchedulingBasic,SchedulingPodAntiAffinity,SchedulingTopologySpreading".into()
    });
    for w in workloads.split(',') {
        run(w).await;
    }
}
