//! A two-version CRD converted by a conversion webhook served by the test (v1 keeps
//! `spec.hostPort`, v2 splits it into `spec.host` and `spec.port`): reads, writes, lists
//! and watches in the non-storage version go through it, a list in one ConversionReview;
//! with the webhook down reads and writes of the other version fail with upstream's
//! error and nothing is stored or corrupted.

use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};
use std::time::Duration;

/// Converts one object between v1 and v2.
fn convert(obj: &Value, desired: &str) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(desired);
    let spec = obj["spec"].clone();
    if desired.ends_with("/v2") {
        let hp = spec["hostPort"].as_str().unwrap_or_default();
        let (host, port) = hp.split_once(':').unwrap_or((hp, "0"));
        out["spec"] = json!({"host": host, "port": port.parse::<i64>().unwrap_or(0)});
    } else {
        out["spec"] = json!({"hostPort": format!("{}:{}", spec["host"].as_str().unwrap_or_default(), spec["port"])});
    }
    out
}

fn answer(_path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or_default();
    let converted: Vec<Value> = req["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| convert(o, desired))
        .collect();
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}})
}

fn crd(port: u16, ca: &str) -> Value {
    let schema = |props: Value| json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "servers.conv.example.com"},
        "spec": {"group": "conv.example.com", "scope": "Namespaced",
            "names": {"plural": "servers", "singular": "server", "kind": "Server"},
            "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/convert"), "caBundle": ca}}},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema(json!({"hostPort": {"type": "string"}}))},
                {"name": "v2", "served": true, "storage": false,
                    "schema": schema(json!({"host": {"type": "string"}, "port": {"type": "integer"}}))}]}})
}

const V1: &str = "/apis/conv.example.com/v1/namespaces/default/servers";
const V2: &str = "/apis/conv.example.com/v2/namespaces/default/servers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_webhook_converts_reads_writes_lists_and_watches() {
    let s = TestApiServer::start(None, &[]).await;
    let hook = integration_tests::webhook::serve(&s.dir.path().join("webhook"), answer).await;
    let (port, ca, reviews, task) = (hook.port, hook.ca_bundle, hook.seen, hook.task);
    s.kubectl_ok(&["apply", "-f", "-"], Some(&crd(port, &ca).to_string()));
    s.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/servers.conv.example.com",
            "--timeout=20s",
        ],
        None,
    );
    let c = &s.client;
    // Written in v1 (storage), read in v2.
    let a = json!({"apiVersion": "conv.example.com/v1", "kind": "Server", "metadata": {"name": "a"}, "spec": {"hostPort": "a.example:80"}});
    let r = integration_tests::wait_for("v1 served", Duration::from_secs(10), || async {
        let r = c.send_json("POST", V1, &a).await;
        (r.status != 404).then_some(r)
    })
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c.get(&format!("{V2}/a")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["apiVersion"], "conv.example.com/v2");
    assert_eq!(r.json()["spec"], json!({"host": "a.example", "port": 80}));
    // Written in v2, stored and read in v1.
    let b = json!({"apiVersion": "conv.example.com/v2", "kind": "Server", "metadata": {"name": "b", "labels": {"tier": "web"}},
        "spec": {"host": "b.example", "port": 443}});
    let r = c.send_json("POST", V2, &b).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["spec"], json!({"host": "b.example", "port": 443}));
    let r = c.get(&format!("{V1}/b")).await.json();
    assert_eq!(r["spec"], json!({"hostPort": "b.example:443"}), "{r}");
    assert_eq!(r["metadata"]["labels"]["tier"], "web");

    // A list in v2 is converted in one review.
    let before = reviews.lock().unwrap().len();
    let list = c.get(V2).await.json();
    let hosts: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["spec"]["host"])
        .collect();
    assert_eq!(hosts, [&json!("a.example"), &json!("b.example")], "{list}");
    let sent: Vec<usize> = reviews.lock().unwrap()[before..]
        .iter()
        .map(|r| r["request"]["objects"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sent, [2], "one ConversionReview for the list");
    // kubectl reads the non-storage version too.
    let out = s.kubectl_ok(
        &[
            "get",
            "servers.v2.conv.example.com",
            "a",
            "-o",
            "jsonpath={.spec.port}",
        ],
        None,
    );
    assert_eq!(out, "80");

    // A watch in v2 gets converted events.
    let mut events = c.watch(&format!("{V2}?watch=true")).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(e["object"]["spec"]["host"].clone());
    }
    let r = c
        .merge_patch(
            &format!("{V1}/a"),
            &json!({"spec": {"hostPort": "a.example:8080"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["object"]["apiVersion"], "conv.example.com/v2");
    assert_eq!(
        e["object"]["spec"],
        json!({"host": "a.example", "port": 8080})
    );

    // The webhook goes down: the other version fails with upstream's error, the storage
    // version still serves, and a write that could not be converted stores nothing.
    task.abort();
    let _ = task.await;
    let r = integration_tests::wait_for(
        "the webhook to be gone",
        Duration::from_secs(10),
        || async {
            let r = c.get(&format!("{V2}/a")).await;
            (r.status == 500).then_some(r)
        },
    )
    .await;
    let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.starts_with(&format!(
            "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=Server failed: Post \"https://127.0.0.1:{port}/convert\""
        )),
        "{msg}"
    );
    let c2 = json!({"apiVersion": "conv.example.com/v2", "kind": "Server", "metadata": {"name": "c"}, "spec": {"host": "c", "port": 1}});
    let r = c.send_json("POST", V2, &c2).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(
        c.get(&format!("{V1}/c")).await.status,
        404,
        "nothing stored"
    );
    let r = c.get(&format!("{V1}/a")).await.json();
    assert_eq!(r["spec"], json!({"hostPort": "a.example:8080"}), "{r}");
}
