//! Upstream API semantics, checked over HTTP against the real binary: watch resume and
//! expiry, optimistic concurrency, paging, durability across kill -9, concurrent writers,
//! and bad input answered with the upstream 4xx Status.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::etcd::Etcd;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

async fn create(c: &Client, name: &str) -> Value {
    let r = c.send_json("POST", CM, &cm(name, json!({"n": "0"}))).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn next_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("watch event in time")
        .expect("watch open")
}

#[tokio::test]
async fn watch_resumes_with_exactly_the_missed_events() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let first = create(c, "resume").await;
    let start = rv(&first);
    let mut cur = first;
    for i in 1..=3 {
        cur["data"]["n"] = json!(i.to_string());
        let r = c.send_json("PUT", &format!("{CM}/resume"), &cur).await;
        assert_eq!(r.status, 200);
        cur = r.json();
    }
    c.request("DELETE", &format!("{CM}/resume"), "application/json", "")
        .await;
    let other = create(c, "unrelated").await;
    let mut rx = c
        .watch(&format!(
            "{CM}?watch=true&resourceVersion={start}&fieldSelector=metadata.name%3Dresume"
        ))
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut rx).await;
        got.push((
            e["type"].as_str().unwrap().to_string(),
            e["object"]["data"]["n"].as_str().unwrap_or("").to_string(),
        ));
    }
    assert_eq!(
        got,
        vec![
            ("MODIFIED".into(), "1".into()),
            ("MODIFIED".into(), "2".into()),
            ("MODIFIED".into(), "3".into()),
            ("DELETED".into(), "3".into())
        ]
    );
    // Nothing else arrives for this name (the unrelated object is filtered out).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    // A watch with bookmarks and initial events: ADDED for the state, then the end bookmark.
    let mut rx = c
        .watch(&format!("{CM}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion={}", rv(&other)))
        .await;
    let e = next_event(&mut rx).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("unrelated"))
    );
    let e = next_event(&mut rx).await;
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(
        e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

async fn expect_expired_watch(c: &Client, path: &str) {
    let mut rx = c.watch(path).await;
    let e = next_event(&mut rx).await;
    assert_eq!(e["type"], "ERROR", "{e}");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
}

#[tokio::test]
async fn watch_from_compacted_revision_gets_410_then_relist_works() {
    let etcd = Etcd::start();
    // Without the watch cache, watches read etcd history directly; compaction runs every second.
    let s = TestApiServer::start(
        Some(&etcd.endpoint),
        &["--watch-cache=false", "--etcd-compaction-interval=1s"],
    )
    .await;
    let c = &s.client;
    let old = rv(&create(c, "compact-me").await);
    let mut cur = c.get(&format!("{CM}/compact-me")).await.json();
    // Keep writing until compaction has passed old+1 (where a watch from `old` starts):
    // an exact read there is then 410.
    wait_for(
        "compaction past the old revision",
        Duration::from_secs(20),
        || {
            let (c, mut obj, old) = (c.clone(), cur.clone(), old.clone());
            async move {
                obj["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
                // Each write must change something: identical updates are no-ops.
                obj["data"]["n"] = json!(format!("{:?}", std::time::Instant::now()));
                assert_eq!(
                    c.send_json("PUT", &format!("{CM}/compact-me"), &obj)
                        .await
                        .status,
                    200
                );
                let r = c
                    .get(&format!(
                        "{CM}?resourceVersion={}&resourceVersionMatch=Exact",
                        old.parse::<i64>().unwrap() + 1
                    ))
                    .await;
                (r.status == 410).then_some(())
            }
        },
    )
    .await;
    cur = c.get(&format!("{CM}/compact-me")).await.json();
    expect_expired_watch(c, &format!("{CM}?watch=1&resourceVersion={old}")).await;
    // An exact list at the compacted revision is 410 too.
    let r = c
        .get(&format!(
            "{CM}?resourceVersion={old}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(r.status, 410, "{}", String::from_utf8_lossy(&r.body));
    // Relist and watch from the list's revision: works, and sees the next change.
    let list = c.get(CM).await.json();
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rx = c
        .watch(&format!("{CM}?watch=1&resourceVersion={list_rv}"))
        .await;
    cur["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    cur["data"]["n"] = json!("after-relist");
    assert_eq!(
        c.send_json("PUT", &format!("{CM}/compact-me"), &cur)
            .await
            .status,
        200
    );
    let e = next_event(&mut rx).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["data"]["n"].as_str()),
        (Some("MODIFIED"), Some("after-relist"))
    );
}

#[tokio::test]
async fn watch_cache_window_is_lost_on_restart() {
    let mut s = TestApiServer::start(None, &[]).await;
    let old = rv(&create(&s.client, "before-restart").await);
    create(&s.client, "second").await;
    s.kill9_and_restart().await;
    expect_expired_watch(&s.client, &format!("{CM}?watch=1&resourceVersion={old}")).await;
}

#[tokio::test]
async fn stale_update_conflicts_and_unconditional_update_wins() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let v1 = create(c, "stale").await;
    let mut fresh = v1.clone();
    fresh["data"]["n"] = json!("1");
    assert_eq!(
        c.send_json("PUT", &format!("{CM}/stale"), &fresh)
            .await
            .status,
        200
    );
    let mut stale = v1.clone();
    stale["data"]["n"] = json!("stale");
    let r = c.send_json("PUT", &format!("{CM}/stale"), &stale).await;
    assert_eq!(r.status, 409);
    let st = r.json();
    assert_eq!(st["reason"], "Conflict");
    assert_eq!(st["details"]["name"], "stale");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified")
    );
    // Precondition on delete.
    let r = c
        .send_json(
            "DELETE",
            &format!("{CM}/stale"),
            &json!({"preconditions": {"resourceVersion": rv(&v1)}}),
        )
        .await;
    assert_eq!(r.status, 409);
    // No-op updates do not move the resourceVersion.
    let cur = c.get(&format!("{CM}/stale")).await.json();
    let again = c
        .send_json("PUT", &format!("{CM}/stale"), &cur)
        .await
        .json();
    assert_eq!(rv(&again), rv(&cur));
}

#[tokio::test]
async fn thousand_objects_page_exactly_once() {
    let s = TestApiServer::start(None, &[]).await;
    let c = s.client.clone();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..1000).step_by(8) {
                let r = c
                    .send_json("POST", CM, &cm(&format!("page-{i:04}"), json!({})))
                    .await;
                assert_eq!(r.status, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("{CM}?limit=100&continue={t}"),
            None => format!("{CM}?limit=100"),
        };
        let page = c.get(&path).await.json();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            assert!(
                seen.insert(item["metadata"]["name"].as_str().unwrap().to_string()),
                "duplicate {}",
                item["metadata"]["name"]
            );
        }
        if pages == 1 {
            assert_eq!(page["metadata"]["remainingItemCount"], 900);
            // Writes between pages do not leak into the snapshot.
            c.send_json("POST", CM, &cm("page-zz-late", json!({})))
                .await;
        }
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    assert_eq!(pages, 10);
    assert_eq!(seen.len(), 1000);
    assert!(!seen.contains("page-zz-late"));
    let r = c.get(&format!("{CM}?limit=100&continue=garbage")).await;
    assert_eq!(r.status, 400);
}

async fn durability(etcd: Option<&str>) {
    let mut s = TestApiServer::start(etcd, &[]).await;
    let mut acked = Vec::new();
    for i in 0..100 {
        let r = s
            .client
            .send_json(
                "POST",
                CM,
                &cm(&format!("durable-{i}"), json!({"i": i.to_string()})),
            )
            .await;
        assert_eq!(r.status, 201);
        acked.push(r.json());
    }
    s.kill9_and_restart().await;
    for obj in &acked {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let got = s.client.get(&format!("{CM}/{name}")).await;
        assert_eq!(got.status, 200, "{name} lost after kill -9");
        let got = got.json();
        assert_eq!(got["data"], obj["data"]);
        assert_eq!(got["metadata"]["uid"], obj["metadata"]["uid"]);
        assert_eq!(rv(&got), rv(obj));
    }
    // Service IP allocations survive too: a new service never reuses an allocated IP.
    let svc = |n: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": n}, "spec": {"ports": [{"port": 80}]}});
    let a = s
        .client
        .send_json("POST", "/api/v1/namespaces/default/services", &svc("a"))
        .await
        .json();
    s.kill9_and_restart().await;
    let b = s
        .client
        .send_json("POST", "/api/v1/namespaces/default/services", &svc("b"))
        .await
        .json();
    assert_ne!(a["spec"]["clusterIP"], b["spec"]["clusterIP"]);
    assert_eq!(s.terminate(), Some(0), "SIGTERM exits cleanly");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill9_embedded() {
    durability(None).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_kill9_etcd() {
    let etcd = Etcd::start();
    durability(Some(&etcd.endpoint)).await;
}

#[tokio::test]
async fn fifty_concurrent_writers_lose_no_update() {
    let s = TestApiServer::start(None, &[]).await;
    create(&s.client, "counter").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let mut cur = c.get(&format!("{CM}/counter")).await.json();
                let n: i64 = cur["data"]["n"].as_str().unwrap().parse().unwrap();
                cur["data"]["n"] = json!((n + 1).to_string());
                match c
                    .send_json("PUT", &format!("{CM}/counter"), &cur)
                    .await
                    .status
                {
                    200 => return conflicts,
                    409 => conflicts += 1,
                    other => panic!("unexpected {other}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let final_ = s.client.get(&format!("{CM}/counter")).await.json();
    assert_eq!(final_["data"]["n"], "50", "after {conflicts} conflicts");
}

#[tokio::test]
async fn concurrent_patches_all_apply() {
    let s = TestApiServer::start(None, &[]).await;
    create(&s.client, "patched").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"metadata":{{"labels":{{"l{i}":"v"}}}}}}"#);
            let r = c
                .request(
                    "PATCH",
                    &format!("{CM}/patched"),
                    "application/strategic-merge-patch+json",
                    body,
                )
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let obj = s.client.get(&format!("{CM}/patched")).await.json();
    assert_eq!(
        obj["metadata"]["labels"].as_object().unwrap().len(),
        20,
        "{obj}"
    );
    // A patch that pins a stale resourceVersion is a conflict, not a retry.
    let r = s
        .client
        .request(
            "PATCH",
            &format!("{CM}/patched"),
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"}}"#,
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn bad_input_gets_upstream_4xx_status() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let check = |r: &integration_tests::client::Reply, code: u16, reason: &str| {
        assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
        let st = r.json();
        assert_eq!(
            (
                st["kind"].as_str(),
                st["status"].as_str(),
                st["reason"].as_str(),
                st["code"].as_u64()
            ),
            (
                Some("Status"),
                Some("Failure"),
                Some(reason),
                Some(code as u64)
            )
        );
        st
    };
    check(
        &c.request("POST", CM, "application/json", "{not json").await,
        400,
        "BadRequest",
    );
    check(
        &c.request("POST", CM, "application/yaml", "a: [unclosed")
            .await,
        400,
        "BadRequest",
    );
    check(
        &c.request("POST", CM, "application/json", "[1,2]").await,
        400,
        "BadRequest",
    );
    check(
        &c.send_json(
            "POST",
            CM,
            &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await,
        400,
        "BadRequest",
    );
    check(
        &c.send_json(
            "POST",
            CM,
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        )
        .await,
        400,
        "BadRequest",
    );
    check(
        &c.send_json(
            "POST",
            CM,
            &json!({"metadata": {"name": "x"}, "data": {"k": 5}}),
        )
        .await,
        400,
        "BadRequest",
    );
    let st = check(
        &c.send_json("POST", CM, &cm("Bad_Name", json!({}))).await,
        422,
        "Invalid",
    );
    assert_eq!(st["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(st["message"].as_str().unwrap().starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
    check(
        &c.send_json("POST", CM, &json!({"metadata": {}})).await,
        422,
        "Invalid",
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
    let st = check(
        &c.send_json("POST", "/api/v1/namespaces/default/pods", &pod)
            .await,
        422,
        "Invalid",
    );
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.containers[0].image"
    );
    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{}\"}}}}",
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    check(
        &c.request("POST", CM, "application/json", big).await,
        413,
        "RequestEntityTooLarge",
    );
    check(
        &c.request("POST", CM, "application/vnd.kubernetes.protobuf", "k8s\0")
            .await,
        415,
        "UnsupportedMediaType",
    );
    // A protobuf ConfigMap whose message is cut short.
    let truncated = apimachinery::protobuf::envelope("v1", "ConfigMap", &[0x0a, 0x05, 0x01]);
    check(
        &c.request("POST", CM, "application/vnd.kubernetes.protobuf", truncated)
            .await,
        400,
        "BadRequest",
    );
    check(
        &c.get("/api/v1/namespaces/default/widgets").await,
        404,
        "NotFound",
    );
    check(
        &c.get("/apis/nope.example.com/v1/things").await,
        404,
        "NotFound",
    );
    let st = check(&c.get(&format!("{CM}/missing")).await, 404, "NotFound");
    assert_eq!(st["message"], "configmaps \"missing\" not found");
    check(
        &c.get(&format!("{CM}?labelSelector=a%20in%20b")).await,
        400,
        "BadRequest",
    );
    check(&c.get(&format!("{CM}?limit=abc")).await, 400, "BadRequest");
    check(
        &c.get(&format!("{CM}?resourceVersion=xyz")).await,
        400,
        "BadRequest",
    );
    check(
        &c.send_json(
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            &cm("x", json!({})),
        )
        .await,
        404,
        "NotFound",
    );
    check(
        &c.request(
            "PATCH",
            &format!("{CM}/missing"),
            "application/merge-patch+json",
            "{}",
        )
        .await,
        404,
        "NotFound",
    );
    create(c, "patchme").await;
    check(
        &c.request(
            "PATCH",
            &format!("{CM}/patchme"),
            "application/json-patch+json",
            "{\"not\":\"a list\"}",
        )
        .await,
        400,
        "BadRequest",
    );
    check(
        &c.request("PATCH", &format!("{CM}/patchme"), "text/plain", "{}")
            .await,
        415,
        "UnsupportedMediaType",
    );
    check(
        &c.send_json("POST", CM, &cm("patchme", json!({}))).await,
        409,
        "AlreadyExists",
    );
    // The server is still healthy after all of it.
    assert_eq!(c.get("/readyz").await.status, 200);
    assert!(!s.log().contains("panic"), "{}", s.log());
}
