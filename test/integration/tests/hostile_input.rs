//! Requests an attacker or a buggy client sends, with the exact reproducers the fuzzing
//! of the apiserver found: each gets upstream's 4xx, never a panic, a 500 or a blown-up
//! process.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use serde_json::{Value, json};

async fn json_patch(c: &Client, path: &str, ops: &Value) -> (u16, Value) {
    let r = c
        .request(
            "PATCH",
            path,
            "application/json-patch+json",
            ops.to_string(),
        )
        .await;
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

/// Copies of `from` into `{into}/c0`, `{into}/c1`, ...: each doubles the object.
fn doubling_copies(n: usize, from: &str) -> Value {
    json!(
        (0..n)
            .map(|i| json!({"op": "copy", "from": from, "path": format!("{from}/c{i}")}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_are_bounded() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"},
        "data": {"k": "x".repeat(64)}});
    assert_eq!(c.send_json("POST", cms, &cm).await.status, 201);
    let pid = s.pid().unwrap();
    let before = integration_tests::rss_mib(Some(pid));

    // 26 doubling copies: upstream's accumulated copy limit answers 422.
    let (status, body) =
        json_patch(c, &format!("{cms}/target"), &doubling_copies(26, "/data")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["kind"], "Status");
    // More operations than upstream allows: 413.
    let many = json!(
        (0..10_001)
            .map(|_| json!({"op": "test", "path": "/kind", "value": "ConfigMap"}))
            .collect::<Vec<_>>()
    );
    let (status, body) = json_patch(c, &format!("{cms}/target"), &many).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10000"),
        "{body}"
    );
    // The same on a custom resource (no schema limits it).
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "blobs.fuzz.example.com"},
        "spec": {"group": "fuzz.example.com", "scope": "Namespaced",
            "names": {"plural": "blobs", "singular": "blob", "kind": "Blob", "listKind": "BlobList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    assert_eq!(
        c.send_json(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd
        )
        .await
        .status,
        201
    );
    let blobs = "/apis/fuzz.example.com/v1/namespaces/default/blobs";
    integration_tests::wait_for("the CRD served", std::time::Duration::from_secs(20), || async {
        let b = json!({"apiVersion": "fuzz.example.com/v1", "kind": "Blob", "metadata": {"name": "b"},
            "spec": {"k": "z".repeat(64 * 1024)}});
        (c.send_json("POST", blobs, &b).await.status == 201).then_some(())
    })
    .await;
    let (status, body) = json_patch(c, &format!("{blobs}/b"), &doubling_copies(18, "/spec")).await;
    assert!((400..500).contains(&status), "{status} {body}");
    let stored = c.get(&format!("{blobs}/b")).await;
    assert!(
        stored.body.len() < 200 * 1024,
        "the object grew to {} bytes",
        stored.body.len()
    );

    let after = integration_tests::rss_mib(Some(pid));
    assert!(
        after < before + 200.0,
        "RSS grew from {before:.0} to {after:.0} MiB"
    );
    assert!(!s.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parsers_are_total() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "admin-token,admin,1,system:masters\n").unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--anonymous-auth=false",
        ],
        Some("admin-token"),
    )
    .await;
    let c = &s.client;
    // A non-ASCII field selector, on list, watch and deletecollection: 400.
    for (method, path) in [
        ("GET", "/api/v1/pods?fieldSelector=%C3%A9"),
        ("GET", "/api/v1/pods?watch=true&fieldSelector=%C3%A9"),
        (
            "DELETE",
            "/api/v1/namespaces/default/configmaps?fieldSelector=%C3%A9",
        ),
        (
            "GET",
            "/api/v1/pods?fieldSelector=metadata.name%3D%C3%A9%5C",
        ),
    ] {
        let r = c.request(method, path, "application/json", "").await;
        assert!(
            r.status == 400 || r.status == 200,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert_ne!(r.status, 500);
    }
    // Impersonating a non-ASCII user name is impersonation, not a server error.
    let r = c
        .clone()
        .with_header("Impersonate-User", "é")
        .with_header("Impersonate-Group", "system:masters")
        .get("/version")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // CONNECT on an ordinary path gets an answer: 405.
    let r = c
        .request("CONNECT", "/api/v1/namespaces", "application/json", "")
        .await;
    assert_eq!(r.status, 405, "{}", r.text());
    // Large request headers are served on HTTP/1.1 up to Go's 1 MiB; more is a 431.
    for size in [17_000, 70_000, 200_000, 1_000_000] {
        let r = c
            .clone()
            .with_header("X-Big", &"x".repeat(size))
            .get("/version")
            .await;
        assert_eq!(r.status, 200, "a {size}-byte header");
    }
    let r = c
        .clone()
        .with_header("X-Big", &"x".repeat(1_100_000))
        .get("/version")
        .await;
    assert_eq!(r.status, 431, "a header past 1 MiB");
    // Bearer tokens as upstream parses them.
    let bare = Client::new(s.port);
    let with = |v: &str| bare.clone().with_header("Authorization", v);
    assert_eq!(
        with("bearer admin-token")
            .get("/api/v1/namespaces")
            .await
            .status,
        200
    );
    assert_eq!(
        with("Bearer  admin-token")
            .get("/api/v1/namespaces")
            .await
            .status,
        401
    );
    assert!(!s.log().contains("panicked"));
}

/// HTTP/2 as client-go uses it: request headers up to Go's 1 MiB are served even as a
/// connection's first request, and a larger one gets 431 on its stream while the watch
/// multiplexed on the same connection keeps streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_headers_up_to_a_mebibyte() {
    use http_body_util::BodyExt;
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let big = |size: usize| c.clone().with_header("X-Big", &"x".repeat(size));
    for size in [70_000, 300_000, 1_000_000] {
        let mut h2 = c.connect_h2().await;
        let r = h2.send_request(big(size).get_request("/version")).await;
        let r = r.unwrap_or_else(|e| panic!("first request, a {size}-byte header: {e}"));
        assert_eq!(r.status(), 200, "first request, a {size}-byte header");
    }
    let mut h2 = c.connect_h2().await;
    let watch = h2
        .send_request(c.get_request("/api/v1/namespaces/default/configmaps?watch=1"))
        .await
        .expect("watch");
    assert_eq!(watch.status(), 200);
    let mut events = watch.into_body();
    let r = h2
        .send_request(big(1_100_000).get_request("/version"))
        .await
        .expect("an oversized header gets an answer");
    assert_eq!(r.status(), 431);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-431"}});
    let r = c
        .send_json("POST", "/api/v1/namespaces/default/configmaps", &cm)
        .await;
    assert_eq!(r.status, 201);
    let deadline = std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("after-431") {
        let frame = tokio::time::timeout(deadline, events.frame())
            .await
            .expect("the watch sees the create")
            .expect("the watch stream is still open")
            .expect("watch frame");
        seen.extend_from_slice(frame.data_ref().map(|d| &d[..]).unwrap_or_default());
    }
    let r = h2
        .send_request(c.get_request("/version"))
        .await
        .expect("after 431");
    assert_eq!(r.status(), 200);
    assert!(!s.log().contains("panicked"));
}

/// A refused upload gets its answer: the server reads what the client is still sending
/// (up to Go's 256 KiB) before answering 401 or 403, rather than closing on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_get_their_answer() {
    let s = TestApiServer::start(None, &["--authorization-mode=Node,RBAC"]).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"k": "x".repeat(200_000)}})
    .to_string();
    let path = "/api/v1/namespaces/default/configmaps";
    for (client, code) in [
        (Client::new(s.port).with_token(Some("not-a-token")), 401),
        (Client::new(s.port).with_token(None), 403),
    ] {
        for _ in 0..5 {
            let r = client
                .request("POST", path, "application/json", cm.clone())
                .await;
            assert_eq!(r.status, code);
        }
    }
    // Not served (yet): a custom resource POSTed before its CRD.
    let r = s
        .client
        .request(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            "application/json",
            cm.clone(),
        )
        .await;
    assert_eq!(r.status, 404);
}

/// Out of file descriptors (a flood of idle connections), the server keeps serving the
/// connections it has, backs off accepting, and accepts again once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_again_after_running_out_of_file_descriptors() {
    let s = TestApiServer::start(None, &[]).await;
    let pid = s.pid().unwrap().to_string();
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=200:200"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());
    // A connection made before the flood keeps working through it.
    let mut kept = s.client.connect().await;
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(c) = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await {
            flood.push(c);
        }
    }
    let req = hyper::Request::builder()
        .uri("/version")
        .header("host", "localhost")
        .header("authorization", "Bearer test-admin-token")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = kept
        .send_request(req)
        .await
        .expect("the kept connection answers");
    assert_eq!(r.status(), 200);
    drop(flood);
    assert!(
        s.log().contains("accept failed"),
        "the flood did exhaust the server's descriptors"
    );
    integration_tests::wait_for(
        "new connections accepted again",
        std::time::Duration::from_secs(20),
        || async { (s.client.get("/version").await.status == 200).then_some(()) },
    )
    .await;
    assert!(!s.log().contains("panicked"));
}
