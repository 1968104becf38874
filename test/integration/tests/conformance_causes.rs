//! The causes behind upstream conformance failures seen on our cluster (one check per
//! cause, named after the spec that found it), against one apiserver.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_machinery_causes() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    secrets_and_configmaps_stay_immutable(c).await;
    tables_only_where_upstream_has_them(c).await;
}

/// [sig-api-machinery] Servers with support for Table transformation should return a 406
/// for a backend which does not implement metadata.
async fn tables_only_where_upstream_has_them(c: &Client) {
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}});
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = c
        .request_accepting("POST", path, "application/json", table, ssar.to_string())
        .await;
    assert_eq!(r.status, 406, "{}", r.text());
    assert_eq!(r.json()["reason"], "NotAcceptable");
    let r = c
        .request_accepting("GET", "/api/v1/namespaces", "", table, "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "Table");
}

/// [sig-storage] Secrets/ConfigMap should be immutable if `immutable` field is set.
async fn secrets_and_configmaps_stay_immutable(c: &Client) {
    for (plural, kind) in [("secrets", "Secret"), ("configmaps", "ConfigMap")] {
        let path = format!("/api/v1/namespaces/default/{plural}");
        let obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "immutable"},
            "data": {"data-1": "dmFsdWUtMQo="}});
        let r = c.send_json("POST", &path, &obj).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let item = format!("{path}/immutable");
        let mut cur = r.json();
        cur["immutable"] = json!(true);
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let mut cur = r.json();
        cur["data"]["data-5"] = json!("dmFsdWUtNQo=");
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 422, "{kind}: data of an immutable object: {}", r.text());
        assert_eq!(
            r.json()["details"]["causes"][0],
            json!({"reason": "FieldValueForbidden", "message": "Forbidden: field is immutable when `immutable` is set", "field": "data"})
        );
        let mut cur = c.get(&item).await.json();
        cur["immutable"] = json!(false);
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 422, "{kind}: immutable back to false: {}", r.text());
        assert_eq!(r.json()["details"]["causes"][0]["field"], "immutable");
        let mut cur = c.get(&item).await.json();
        cur["metadata"]["labels"] = json!({"label1": "value1"});
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 200, "{kind}: labels stay mutable: {}", r.text());
        assert_eq!(c.request("DELETE", &item, "", "").await.status, 200);
    }
    let _: Value = Value::Null;
}
