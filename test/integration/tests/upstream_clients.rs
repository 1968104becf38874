//! What upstream's Go components and conformance suite do against our apiserver, through
//! a client that talks as client-go does (`integration_tests::gocli`): protobuf
//! `DeleteOptions` bodies, single-object watches authorized by name (RBAC
//! `resourceNames`, the Node authorizer), and `events.k8s.io/v1` events shown by
//! `kubectl get events`.

use integration_tests::apiserver::{TestApiServer, kubectl_as};
use integration_tests::gocli::GoClient;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

const TOKENS: &str = "admin-token,admin,1,system:masters\nreader-token,reader,2\nnode1-token,system:node:node1,3,system:nodes\n";

async fn server() -> (TestApiServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=Node,RBAC",
        ],
        Some("admin-token"),
    )
    .await;
    (s, dir)
}

fn as_user(s: &TestApiServer, token: &str) -> GoClient {
    GoClient::new(s.client.clone().with_token(Some(token)))
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_delete_options_are_honoured() {
    let (s, _dir) = server().await;
    let go = as_user(&s, "admin-token");
    let ns = "/api/v1/namespaces/default/configmaps";

    // Preconditions in a protobuf body: a wrong uid is a 409, the right one deletes.
    let cm = go.create(ns, &configmap("pre")).await;
    assert_eq!(cm.status, 201, "{}", cm.body);
    assert!(
        cm.content_type
            .starts_with("application/vnd.kubernetes.protobuf")
    );
    let uid = cm.body["metadata"]["uid"].as_str().unwrap().to_string();
    let r = go
        .delete(
            &format!("{ns}/pre"),
            "v1",
            json!({"preconditions": {"uid": "not-the-uid"}}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["reason"], "Conflict", "{}", r.body);
    let r = go
        .delete(
            &format!("{ns}/pre"),
            "v1",
            json!({"preconditions": {"uid": uid}, "propagationPolicy": "Background", "gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(go.get(&format!("{ns}/pre")).await.status, 404);

    // deletecollection with a protobuf body and a label selector in the query.
    for n in ["a", "b", "c"] {
        let mut cm = configmap(n);
        cm["metadata"]["labels"] = json!({"set": if n == "c" { "other" } else { "one" }});
        assert_eq!(go.create(ns, &cm).await.status, 201);
    }
    let r = go
        .delete(
            &format!("{ns}?labelSelector=set%3Done"),
            "v1",
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(go.get(&format!("{ns}/a")).await.status, 404);
    assert_eq!(go.get(&format!("{ns}/c")).await.status, 200);

    // Foreground propagation of an apps/v1 object: the body's group version is the
    // client's, and the object waits for its dependents with upstream's finalizer.
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    assert_eq!(go.create(deps, &dep).await.status, 201);
    let r = go
        .delete(
            &format!("{deps}/web"),
            "apps/v1",
            json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "{}",
        r.body
    );

    // A namespace and a CustomResourceDefinition, deleted as the conformance framework
    // cleans up after every spec.
    let nsobj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "e2e-1"}});
    assert_eq!(go.create("/api/v1/namespaces", &nsobj).await.status, 201);
    let r = go
        .delete(
            "/api/v1/namespaces/e2e-1",
            "v1",
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["metadata"]["deletionTimestamp"].is_string() || r.body["kind"] == "Status",
        "{}",
        r.body
    );
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.e2e.example.com"},
        "spec": {"group": "e2e.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let r = go.create(crds, &crd).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = go
        .delete(
            &format!("{crds}/widgets.e2e.example.com"),
            "apiextensions.k8s.io/v1",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for("the CRD to go", Duration::from_secs(20), || async {
        (go.get(&format!("{crds}/widgets.e2e.example.com"))
            .await
            .status
            == 404)
            .then_some(())
    })
    .await;

    // A body that is not DeleteOptions protobuf is a 400, not a crash.
    let r = s
        .client
        .request(
            "DELETE",
            &format!("{ns}/c"),
            "application/vnd.kubernetes.protobuf",
            "garbage",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(go.get(&format!("{ns}/c")).await.status, 200);
}

/// Reads the next event of a watch within a deadline.
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a watch event")
        .expect("the watch stays open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_scoped_watches_are_authorized_by_name() {
    let (s, _dir) = server().await;
    let admin = s.user_kubeconfig("admin", "    token: admin-token\n");
    let setup = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-x, namespace: default}
rules: [{apiGroups: [""], resources: [configmaps], resourceNames: [allowed], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-x, namespace: default}
roleRef: {kind: Role, name: read-x}
subjects: [{kind: User, name: reader}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: allowed, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: denied, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: mounted, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: default}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  nodeName: node1
  containers: [{name: c, image: busybox:1.36}]
  volumes:
  - name: v
    projected:
      sources: [{configMap: {name: mounted}}]
"#;
    // The binding's roleRef has no apiGroup, and its User subject neither: both are
    // defaulted as upstream does.
    let (ok, _, err) = kubectl_as(&admin, &["apply", "-f", "-"], setup);
    assert!(ok, "{err}");
    let cms = "/api/v1/namespaces/default/configmaps";

    // RBAC resourceNames: the named watch and list are allowed, an unnamed or other one not.
    let reader = as_user(&s, "reader-token");
    let (status, mut rx) = reader.watch_name(cms, "allowed").await;
    assert_eq!(status, 200);
    let (kind, obj) = next(&mut rx).await;
    assert_eq!(
        (kind.as_str(), obj["metadata"]["name"].as_str()),
        ("ADDED", Some("allowed"))
    );
    let list = reader
        .get(&format!("{cms}?fieldSelector=metadata.name%3Dallowed"))
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(reader.watch_name(cms, "denied").await.0, 403);
    let r = reader.get(&format!("{cms}?watch=true")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(reader.get(cms).await.status, 403);
    // A changed object reaches the named watch.
    let go = as_user(&s, "admin-token");
    let mut x = go.get(&format!("{cms}/allowed")).await.body;
    x["data"] = json!({"k": "2"});
    assert_eq!(go.update(&format!("{cms}/allowed"), &x).await.status, 200);
    let (kind, obj) = next(&mut rx).await;
    assert_eq!(
        (kind.as_str(), &obj["data"]["k"]),
        ("MODIFIED", &json!("2"))
    );

    // The Node authorizer: a kubelet watches the ConfigMap its pod mounts, by name, and
    // nothing else (as an upstream kubelet watches kube-root-ca.crt).
    let node = as_user(&s, "node1-token");
    let (status, mut rx) = node.watch_name(cms, "mounted").await;
    assert_eq!(status, 200);
    assert_eq!(next(&mut rx).await.0, "ADDED");
    assert_eq!(node.watch_name(cms, "other").await.0, 403);
    assert_eq!(node.get(&format!("{cms}?watch=true")).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_k8s_io_events_print_their_event_time() {
    let (s, _dir) = server().await;
    let go = as_user(&s, "admin-token");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    let created = go.create("/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let regarding = json!({"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "p",
        "uid": created.body["metadata"]["uid"]});
    let ev = go
        .record_event(
            "default",
            &regarding,
            "Scheduled",
            "Successfully assigned default/p to node1",
        )
        .await;
    assert_eq!(ev.status, 201, "{}", ev.body);
    // The zero `deprecatedLastTimestamp` Go wrote is no time at all, not 1970.
    assert!(
        ev.body.get("deprecatedLastTimestamp").is_none(),
        "{}",
        ev.body
    );
    assert!(ev.body["eventTime"].is_string(), "{}", ev.body);

    let (ok, out, err) = s.kubectl(&["get", "events", "-n", "default", "--no-headers"], None);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("Scheduled"))
        .unwrap_or_else(|| panic!("{out}"));
    let last_seen = line.split_whitespace().next().unwrap();
    assert!(
        last_seen.ends_with('s') && last_seen.len() <= 3,
        "LAST SEEN should be seconds: {line}"
    );
    assert!(line.contains("pod/p"), "{line}");
    assert!(
        line.contains("Successfully assigned default/p to node1"),
        "{line}"
    );

    // A series: LAST SEEN follows its lastObservedTime and COUNT its count.
    let mut series = ev.body.clone();
    let earlier = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(7200))
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    series["series"] = json!({"count": 4, "lastObservedTime": earlier});
    let name = series["metadata"]["name"].as_str().unwrap().to_string();
    let r = go
        .update(
            &format!("/apis/events.k8s.io/v1/namespaces/default/events/{name}"),
            &series,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (ok, out, err) = s.kubectl(
        &[
            "get",
            "events",
            "-n",
            "default",
            "-o",
            "wide",
            "--no-headers",
        ],
        None,
    );
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("Scheduled"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("120m") || line.starts_with("119m") || line.starts_with("2h"),
        "{line}"
    );
    assert!(line.split_whitespace().any(|c| c == "4"), "COUNT 4: {line}");
}

/// client-go's watch-list (`sendInitialEvents`) for metadata-only informers: the
/// initial-events-end bookmark carries the empty list blueprint client-go rebuilds the
/// list from (without it, client-go falls back to LIST).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_list_bookmarks_carry_the_list_blueprint() {
    use base64::Engine;
    let (s, _dir) = server().await;
    let go = as_user(&s, "admin-token");
    assert_eq!(
        go.create("/api/v1/namespaces/default/configmaps", &configmap("one"))
            .await
            .status,
        201
    );
    let query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
    let metadata = s.client.clone().with_header(
        "accept",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    );
    let mut rx = metadata
        .watch(&format!("/api/v1/namespaces/default/configmaps?{query}"))
        .await;
    let bookmark = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the initial events end")
            .expect("watch open");
        if ev["type"] == "BOOKMARK" {
            break ev["object"].clone();
        }
        assert_eq!(ev["object"]["kind"], "PartialObjectMetadata", "{ev}");
    };
    let ann = &bookmark["metadata"]["annotations"];
    assert_eq!(ann["k8s.io/initial-events-end"], "true", "{bookmark}");
    let blueprint = base64::engine::general_purpose::STANDARD
        .decode(
            ann["kubernetes.io/initial-events-list-blueprint"]
                .as_str()
                .expect("the blueprint"),
        )
        .unwrap();
    let list: Value = serde_json::from_slice(&blueprint).unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["items"], json!([]));
    assert_eq!(
        list["metadata"]["resourceVersion"],
        bookmark["metadata"]["resourceVersion"]
    );
}

/// What upstream components look for at start: the scheduler's caches (VolumeAttachments)
/// sync under `system:kube-scheduler`, the legacy token tracking ConfigMap exists,
/// and `admin`/`edit`/`view` aggregate as upstream's. (Every role and binding is compared
/// with upstream's, rule by rule, in the registry's unit tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_objects_upstream_components_expect() {
    let (s, _dir) = server().await;
    let admin = s.user_kubeconfig("admin", "    token: admin-token\n");
    for (verb, resource) in [
        ("list", "volumeattachments.storage.k8s.io"),
        ("watch", "csidrivers.storage.k8s.io"),
    ] {
        let (ok, out, err) = kubectl_as(
            &admin,
            &[
                "auth",
                "can-i",
                verb,
                resource,
                "--as=system:kube-scheduler",
            ],
            "",
        );
        assert!(ok && out.trim() == "yes", "{verb} {resource}: {out} {err}");
    }
    // Upstream's roles lost the Endpoints leader lock long ago.
    let (_, out, _) = kubectl_as(
        &admin,
        &[
            "auth",
            "can-i",
            "create",
            "endpoints",
            "-n",
            "kube-system",
            "--as=system:kube-scheduler",
        ],
        "",
    );
    assert_eq!(out.trim(), "no");
    let go = as_user(&s, "admin-token");
    let cm = go
        .get("/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking")
        .await;
    assert_eq!(cm.status, 200, "{}", cm.body);
    let since = cm.body["data"]["since"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        since.parse::<jiff::civil::Date>().is_ok(),
        "since: {since:?}"
    );
    let view = go
        .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
        .await
        .body;
    assert_eq!(
        view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"],
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"})
    );
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
}
