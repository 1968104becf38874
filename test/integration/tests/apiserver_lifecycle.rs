//! Object lifecycle over HTTP against the real binary: finalizers, graceful pod deletion,
//! binding, generation and the status split, dry runs, deletecollection, unknown-field
//! warnings, and Service IP / NodePort allocation.

use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};
use std::collections::HashSet;

const NS: &str = "/api/v1/namespaces/default";

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

#[tokio::test]
async fn finalizers_graceful_deletion_and_binding() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    // An object with a finalizer stays, marked for deletion, until the finalizer is removed.
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        c.send_json("POST", &format!("{NS}/configmaps"), &cm)
            .await
            .status,
        201
    );
    let r = c
        .request(
            "DELETE",
            &format!("{NS}/configmaps/held"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let held = c.get(&format!("{NS}/configmaps/held")).await.json();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let r = c
        .request(
            "PATCH",
            &format!("{NS}/configmaps/held"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/new"]}}"#,
        )
        .await;
    assert_eq!(r.status, 422, "no new finalizers while deleting");
    let r = c
        .request(
            "PATCH",
            &format!("{NS}/configmaps/held"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get(&format!("{NS}/configmaps/held")).await.status, 404);

    // A pod that is not bound to a node is deleted at once.
    assert_eq!(
        c.send_json("POST", &format!("{NS}/pods"), &pod("unbound", None))
            .await
            .status,
        201
    );
    let r = c
        .request(
            "DELETE",
            &format!("{NS}/pods/unbound"),
            "application/json",
            "",
        )
        .await;
    assert_eq!((r.status, r.json()["kind"].as_str()), (200, Some("Pod")));
    assert_eq!(c.get(&format!("{NS}/pods/unbound")).await.status, 404);

    // Binding assigns a node once, with the PodScheduled condition.
    let created = c
        .send_json("POST", &format!("{NS}/pods"), &pod("bindme", None))
        .await
        .json();
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["status"]["qosClass"], "BestEffort");
    assert_eq!(created["spec"]["terminationGracePeriodSeconds"], 30);
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bindme"}, "target": {"kind": "Node", "name": "node-1"}});
    assert_eq!(
        c.send_json("POST", &format!("{NS}/pods/bindme/binding"), &binding)
            .await
            .status,
        201
    );
    let bound = c.get(&format!("{NS}/pods/bindme")).await.json();
    assert_eq!(bound["spec"]["nodeName"], "node-1");
    assert!(
        bound["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    );
    let r = c
        .send_json("POST", &format!("{NS}/pods/bindme/binding"), &binding)
        .await;
    assert_eq!(r.status, 409);
    // The namespace-level `bindings` resource binds the pod its Binding names.
    c.send_json("POST", &format!("{NS}/pods"), &pod("bindme2", None))
        .await;
    let legacy = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bindme2"}, "target": {"kind": "Node", "name": "node-2"}});
    let r = c
        .send_json("POST", &format!("{NS}/bindings"), &legacy)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bound = c.get(&format!("{NS}/pods/bindme2")).await.json();
    assert_eq!(bound["spec"]["nodeName"], "node-2");
    c.request(
        "DELETE",
        &format!("{NS}/pods/bindme2?gracePeriodSeconds=0"),
        "application/json",
        "",
    )
    .await;
    // Namespaces cannot be deleted as a collection.
    let r = c
        .request("DELETE", "/api/v1/namespaces", "application/json", "")
        .await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.json()["reason"], "MethodNotAllowed");
    // Field selectors on pods' own fields.
    let on_node = c
        .get(&format!("{NS}/pods?fieldSelector=spec.nodeName%3Dnode-1"))
        .await
        .json();
    assert_eq!(on_node["items"].as_array().unwrap().len(), 1);

    // A bound pod is deleted gracefully: it stays with a deletionTimestamp until a
    // zero-grace delete (the kubelet's) removes it.
    let r = c
        .request(
            "DELETE",
            &format!("{NS}/pods/bindme"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let terminating = c.get(&format!("{NS}/pods/bindme")).await.json();
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    let r = c
        .request(
            "DELETE",
            &format!("{NS}/pods/bindme?gracePeriodSeconds=0"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get(&format!("{NS}/pods/bindme")).await.status, 404);
}

#[tokio::test]
async fn generation_status_split_dry_run_and_deletecollection() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let d = c.send_json("POST", path, &deploy).await.json();
    assert_eq!(d["metadata"]["generation"], 1);
    // Metadata-only change: generation stays.
    let r = c
        .request(
            "PATCH",
            &format!("{path}/d"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        )
        .await
        .json();
    assert_eq!(r["metadata"]["generation"], 1);
    // Spec change: generation moves.
    let r = c
        .request(
            "PATCH",
            &format!("{path}/d"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{"replicas":3}}"#,
        )
        .await
        .json();
    assert_eq!(r["metadata"]["generation"], 2);
    // Status through the main resource is ignored; through /status only status changes.
    let r = c
        .request(
            "PATCH",
            &format!("{path}/d"),
            "application/merge-patch+json",
            r#"{"status":{"replicas":7}}"#,
        )
        .await
        .json();
    assert!(r["status"]["replicas"].is_null());
    let r = c
        .request(
            "PATCH",
            &format!("{path}/d/status"),
            "application/merge-patch+json",
            r#"{"status":{"replicas":7},"spec":{"replicas":9}}"#,
        )
        .await
        .json();
    assert_eq!(
        (
            r["status"]["replicas"].as_i64(),
            r["spec"]["replicas"].as_i64(),
            r["metadata"]["generation"].as_i64()
        ),
        (Some(7), Some(3), Some(2))
    );
    // The selector is immutable.
    let r = c.request("PATCH", &format!("{path}/d"), "application/merge-patch+json", r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#).await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("field is immutable")
    );
    // scale subresource.
    let sc = c.get(&format!("{path}/d/scale")).await.json();
    assert_eq!(
        (
            sc["kind"].as_str(),
            sc["spec"]["replicas"].as_i64(),
            sc["status"]["selector"].as_str()
        ),
        (Some("Scale"), Some(3), Some("app=d"))
    );

    // dryRun=All validates and answers but stores nothing.
    let r = c
        .send_json(
            "POST",
            &format!("{NS}/configmaps?dryRun=All"),
            &json!({"metadata": {"name": "dry"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(c.get(&format!("{NS}/configmaps/dry")).await.status, 404);

    // Unknown fields: dropped with a warning by default.
    let r = c
        .send_json(
            "POST",
            &format!("{NS}/configmaps"),
            &json!({"metadata": {"name": "warned"}, "dataa": {}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let warning = r
        .headers
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(warning, r#"299 - "unknown field \"dataa\"""#);
    assert!(r.json().get("dataa").is_none());

    // deletecollection honours the label selector.
    for (n, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        c.send_json(
            "POST",
            &format!("{NS}/configmaps"),
            &json!({"metadata": {"name": n, "labels": {"tier": tier}}}),
        )
        .await;
    }
    let r = c
        .request(
            "DELETE",
            &format!("{NS}/configmaps?labelSelector=tier%3Dx"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    let left: Vec<String> = c
        .get(&format!("{NS}/configmaps?labelSelector=tier"))
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, vec!["c".to_string()]);
    // generateName.
    let g = c
        .send_json(
            "POST",
            &format!("{NS}/configmaps"),
            &json!({"metadata": {"generateName": "gen-"}}),
        )
        .await
        .json();
    let name = g["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn service_ips_and_node_ports_are_never_shared() {
    let s = TestApiServer::start(None, &["--service-cluster-ip-range=10.96.0.0/24"]).await;
    let c = s.client.clone();
    let path = format!("{NS}/services");
    // Concurrent creations get distinct ClusterIPs inside the range.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (c, path) = (c.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .send_json(
                    "POST",
                    &path,
                    &svc(&format!("s{i}"), json!({"ports": [{"port": 80}]})),
                )
                .await;
            assert_eq!(r.status, 201);
            r.json()["spec"]["clusterIP"].as_str().unwrap().to_string()
        }));
    }
    let mut ips = HashSet::new();
    for t in tasks {
        let ip = t.await.unwrap();
        assert!(ip.starts_with("10.96.0."), "{ip}");
        assert!(ips.insert(ip.clone()), "{ip} handed out twice");
    }
    assert!(!ips.contains("10.96.0.1"), "the kubernetes service owns .1");
    // A requested IP: taken -> 422; released on delete -> can be taken again.
    let taken = ips.iter().next().unwrap().clone();
    let r = c
        .send_json(
            "POST",
            &path,
            &svc("dup", json!({"clusterIP": taken, "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is already allocated")
    );
    let r = c
        .send_json(
            "POST",
            &path,
            &svc(
                "outside",
                json!({"clusterIP": "192.0.2.1", "ports": [{"port": 80}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422);
    let list = c.get(&path).await.json();
    let holder = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["clusterIP"] == taken.as_str())
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.request(
            "DELETE",
            &format!("{path}/{holder}"),
            "application/json",
            ""
        )
        .await
        .status,
        200
    );
    let r = c
        .send_json(
            "POST",
            &path,
            &svc("dup", json!({"clusterIP": taken, "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(r.status, 201);

    // NodePorts: allocated in range, a requested port only once, released on delete.
    let np = c.send_json("POST", &path, &svc("np", json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81}]}))).await;
    assert_eq!(np.status, 201, "{}", String::from_utf8_lossy(&np.body));
    let np = np.json();
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
    let auto = np["spec"]["ports"][1]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&auto) && auto != 30080);
    let r = c
        .send_json(
            "POST",
            &path,
            &svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("provided port is already allocated")
    );
    let r = c
        .send_json(
            "POST",
            &path,
            &svc(
                "np3",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422);
    // Changing the type to ClusterIP releases the ports.
    let r = c
        .request(
            "PATCH",
            &format!("{path}/np"),
            "application/merge-patch+json",
            r#"{"spec":{"type":"ClusterIP"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["spec"]["ports"][0]["nodePort"].is_null());
    let r = c
        .send_json(
            "POST",
            &path,
            &svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201);
    // The clusterIP cannot change.
    let r = c
        .request(
            "PATCH",
            &format!("{path}/np2"),
            "application/merge-patch+json",
            r#"{"spec":{"clusterIP":"10.96.0.250"}}"#,
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("may not change once set")
    );
}
