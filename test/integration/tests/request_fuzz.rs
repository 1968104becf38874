//! A request-level fuzzer against the real kube-apiserver binary: a bounded number of
//! generated requests (malformed and pathological paths, queries, headers, bodies and
//! patches, mutations of valid ones), with the reproducers found so far among them.
//! Every request gets an answer, none a 5xx (but upstream's own 504 for a resourceVersion
//! from the future), the log shows no panic, memory stays bounded and the objects that
//! existed before are intact. `FUZZ_REQUESTS` sets the count (10,000 by default).

use apimachinery::fuzz::Rng;
use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};
use std::time::Duration;

const PATHS: &[&str] = &[
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/configmaps/f",
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/pods/p/status",
    "/api/v1/namespaces/default/pods/p/binding",
    "/api/v1/namespaces/default/pods/p/eviction",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/secrets/s",
    "/api/v1/namespaces/default",
    "/api/v1/nodes",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/deployments/d/scale",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/fuzz.example.com/v1/namespaces/default/things",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/events.k8s.io/v1/namespaces/default/events",
    "/version",
    "/openapi/v3",
    "/api",
    "/apis",
];

const SEGMENTS: &[&str] = &[
    "",
    "..",
    ".",
    "%00",
    "%2F",
    "é",
    "日本",
    "a%",
    "%zz",
    "UPPER",
    "-",
    "a b",
    "x",
    "watch",
    "namespaces",
    "status",
    "scale",
    "proxy",
    "log",
    "exec",
    "ephemeralcontainers",
];

const QUERIES: &[&str] = &[
    "fieldSelector=%C3%A9",
    "fieldSelector=metadata.name%3D%3D%3D",
    "fieldSelector=spec.nodeName!%3D%C3%A9",
    "labelSelector=a%20in%20(",
    "labelSelector=!!!",
    "labelSelector=a%3E%C3%A9",
    "resourceVersion=-1",
    "resourceVersion=abc",
    "resourceVersion=99999999999999999999",
    "resourceVersion=999999999&resourceVersionMatch=Exact",
    "resourceVersionMatch=Bogus&resourceVersion=1",
    "limit=-5",
    "limit=abc",
    "limit=99999999999999999999",
    "continue=%%%",
    "continue=eyJ2IjoiYSJ9",
    "watch=true&timeoutSeconds=1",
    "watch=1&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    "watch=yes",
    "timeoutSeconds=-1",
    "dryRun=Maybe",
    "dryRun=All",
    "fieldValidation=Strict",
    "fieldValidation=Nope",
    "propagationPolicy=Sideways",
    "gracePeriodSeconds=-99",
    "gracePeriodSeconds=x",
    "orphanDependents=perhaps",
    "fieldManager=%C3%A9",
    "force=maybe",
    "as=Table",
    "includeObject=Wrong",
    "pretty=true",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "application/json; charset=é",
    "",
];

const ACCEPTS: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/json;as=Nothing",
    "image/png",
    "*/*",
];

/// A valid object to mutate, per path family.
fn template(path: &str) -> Value {
    if path.contains("configmaps") {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}, "data": {"a": "b"}})
    } else if path.contains("pods") {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}})
    } else if path.contains("deployments") {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    } else {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
    }
}

/// Replaces a random value somewhere in the document with something of another shape.
fn mutate(rng: &mut Rng, v: &mut Value, depth: usize) {
    let replacement = || -> Vec<Value> {
        vec![
            json!(null),
            json!(-1),
            json!(1e308),
            json!("é\u{0}"),
            json!("9999999999999999999Ki"),
            json!([]),
            json!({}),
            json!(true),
            json!("x".repeat(300)),
            json!({"$patch": "delete"}),
            serde_json::from_str(&format!("{}1{}", "[".repeat(24), "]".repeat(24))).unwrap(),
        ]
    };
    match v {
        Value::Object(m) if !m.is_empty() && depth < 6 => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            if rng.below(4) == 0 {
                let r = replacement();
                m.insert(k.clone(), r[rng.below(r.len())].clone());
            } else {
                mutate(rng, m.get_mut(k).unwrap(), depth + 1);
            }
        }
        Value::Array(a) if !a.is_empty() && depth < 6 => {
            let i = rng.below(a.len());
            mutate(rng, &mut a[i], depth + 1);
        }
        other => {
            let r = replacement();
            *other = r[rng.below(r.len())].clone();
        }
    }
}

fn body(rng: &mut Rng, path: &str, content_type: &str) -> Vec<u8> {
    let mut obj = template(path);
    match rng.below(8) {
        0 => Vec::new(),
        1 => (0..rng.below(256)).map(|_| rng.next_u64() as u8).collect(),
        2 => b"{\"a\": ".to_vec(),
        // Reproducers: doubling JSON patch copies; a YAML alias bomb.
        3 if content_type.contains("json-patch") => json!((0..26)
            .map(|i| json!({"op": "copy", "from": "/metadata", "path": format!("/metadata/c{i}")}))
            .collect::<Vec<_>>())
        .to_string()
        .into_bytes(),
        4 if content_type.contains("yaml") => {
            b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d]\n".to_vec()
        }
        5 if content_type.contains("protobuf") => {
            let mut b = apimachinery::protobuf::encode_object(&obj).unwrap_or_default();
            for _ in 0..=rng.below(5) {
                if !b.is_empty() {
                    let at = rng.below(b.len());
                    b[at] = rng.next_u64() as u8;
                }
            }
            b
        }
        _ => {
            for _ in 0..=rng.below(3) {
                mutate(rng, &mut obj, 0);
            }
            if content_type.contains("json-patch") {
                json!([{"op": rng.pick(&["add", "remove", "replace", "move", "copy", "test", "bogus"]),
                    "path": rng.pick(&["/metadata/labels/x", "/spec/-", "/", "", "/data/~2", "/metadata/name"]),
                    "from": rng.pick(&["/metadata", "/nope", ""]), "value": obj}])
                .to_string()
                .into_bytes()
            } else {
                obj.to_string().into_bytes()
            }
        }
    }
}

/// What a client puts on the wire for a path: bytes outside the URI's characters
/// percent-encoded (`%` itself left as is, so malformed escapes reach the server).
fn on_the_wire(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b'%' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_bad_requests_get_answers_not_crashes() {
    let s = TestApiServer::start(None, &[]).await;
    let c = s.client.clone();
    // What must survive the run, in a namespace no generated request names.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}});
    c.create("/api/v1/namespaces", &ns).await;
    let keep = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"v": "1"}});
    let kept = c.create("/api/v1/namespaces/kept/configmaps", &keep).await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.fuzz.example.com"},
        "spec": {"group": "fuzz.example.com", "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    let pid = s.pid().unwrap();
    let n: usize = std::env::var("FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xC0FF_EE00 + w as u64);
            let mut failures = Vec::new();
            let mut conn = c.connect().await;
            for i in (w..n).step_by(workers) {
                let method = rng.pick(&[
                    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "CONNECT",
                ]);
                let mut path = rng.pick(PATHS).to_string();
                if rng.below(4) == 0 {
                    path = format!("{path}/{}", rng.pick(SEGMENTS));
                }
                if rng.below(10) == 0 {
                    path = format!("{path}/{}", "n".repeat(rng.below(4096)));
                }
                let mut query: Vec<&str> = Vec::new();
                for _ in 0..rng.below(3) {
                    query.push(rng.pick(QUERIES));
                }
                let path = on_the_wire(&path);
                let uri = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{}", query.join("&"))
                };
                let ct = rng.pick(CONTENT_TYPES);
                let accept = rng.pick(ACCEPTS);
                let payload = body(&mut rng, &path, ct);
                let mut req = hyper::Request::builder()
                    .method(method)
                    .uri(&uri)
                    .header("host", "localhost")
                    .header("content-type", ct)
                    .header("accept", accept)
                    .header("authorization", "Bearer test-admin-token");
                if rng.below(20) == 0 {
                    req = req
                        .header("Impersonate-User", rng.pick(&["é", "", "system:admin"]))
                        .header("Impersonate-Group", "system:masters");
                }
                let req = req
                    .body(http_body_util::Full::new(bytes::Bytes::from(payload)))
                    .unwrap();
                let watch = uri.contains("watch=");
                if conn.ready().await.is_err() {
                    conn = c.connect().await;
                }
                let sent =
                    tokio::time::timeout(Duration::from_secs(20), conn.send_request(req)).await;
                let resp = match sent {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        failures.push(format!("#{i} {method} {uri} ({ct}): no answer: {e}"));
                        conn = c.connect().await;
                        continue;
                    }
                    Err(_) => {
                        failures.push(format!("#{i} {method} {uri} ({ct}): no answer within 20 s"));
                        conn = c.connect().await;
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                // Streams end on their own (timeoutSeconds=1); others are read whole.
                let read = tokio::time::timeout(
                    Duration::from_secs(if watch { 10 } else { 20 }),
                    http_body_util::BodyExt::collect(resp.into_body()),
                )
                .await;
                let text = match read {
                    Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    _ => {
                        conn = c.connect().await;
                        String::new()
                    }
                };
                // Upstream's own 504 for a resourceVersion from the future (a HEAD answer
                // has no body to say so).
                let too_new = status == 504
                    && (text.contains("Too large resource version")
                        || (method == "HEAD" && uri.contains("resourceVersion=")));
                if status >= 500 && !too_new {
                    failures.push(format!(
                        "#{i} {method} {uri} ({ct}): {status} {}",
                        &text[..text.len().min(300)]
                    ));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    let log = s.log();
    assert!(
        !log.contains("panicked"),
        "the apiserver panicked: {}",
        log.lines()
            .filter(|l| l.contains("panicked"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let rss = integration_tests::rss_mib(Some(pid));
    assert!(
        rss < 1024.0,
        "apiserver RSS {rss:.0} MiB after {n} requests"
    );
    println!("{n} generated requests: no 5xx, no panic; apiserver RSS {rss:.0} MiB");
    let after = c
        .get("/api/v1/namespaces/kept/configmaps/keep")
        .await
        .json();
    assert_eq!(after["metadata"]["uid"], kept["metadata"]["uid"]);
    assert_eq!(after["data"], keep["data"]);
    assert_eq!(c.get("/readyz").await.status, 200);
}
