//! Our kube-controller-manager against our apiserver: the ReplicaSet controller (create
//! with upstream's names and events, scale down, replace deleted pods, adopt orphans),
//! the ServiceAccount controller, the root CA publisher and ClusterRole aggregation.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::component::TestControllerManager;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

async fn create(c: &Client, path: &str, v: &Value) -> Value {
    let r = c.send_json("POST", path, v).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

async fn patch(c: &Client, path: &str, v: Value) {
    let r = c
        .request("PATCH", path, "application/merge-patch+json", v.to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Active pods with `app=web`.
async fn web_pods(c: &Client) -> Vec<Value> {
    let list = c
        .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
        .await
        .json();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

async fn wait_count(c: &Client, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} web pods"),
        Duration::from_secs(20),
        || async {
            let pods = web_pods(c).await;
            (pods.len() == n).then_some(pods)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_serviceaccounts_root_ca_and_aggregation() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[&format!("--root-ca-file={}", ca.display())],
    )
    .await;
    assert_eq!(Client::new(kcm.port).get("/healthz").await.status, 200);

    // ReplicaSet: three pods named after it, owned by it, announced by events.
    let rs = create(&c, "/apis/apps/v1/namespaces/default/replicasets", &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    let uid = rs["metadata"]["uid"].as_str().unwrap().to_string();
    let pods = wait_count(&c, 3).await;
    // The queues report upstream's workqueue metrics.
    let m = kcm.metrics().await;
    for series in [
        "workqueue_adds_total{name=\"replicaset\"}",
        "workqueue_depth{name=\"deployment\"}",
        "workqueue_work_duration_seconds_count{name=\"replicaset\"}",
        "workqueue_longest_running_processor_seconds{name=\"replicaset\"}",
    ] {
        assert!(m.contains(series), "{series}: {m}");
    }
    for p in &pods {
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                owner["kind"].as_str(),
                owner["uid"].as_str(),
                owner["controller"].as_bool()
            ),
            (Some("ReplicaSet"), Some(uid.as_str()), Some(true))
        );
    }
    let rs_path = "/apis/apps/v1/namespaces/default/replicasets/web";
    wait_for("status.replicas 3", Duration::from_secs(10), || async {
        let rs = c.get(rs_path).await.json();
        (rs["status"]["replicas"] == 3 && rs["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;
    let events = wait_for(
        "SuccessfulCreate events",
        Duration::from_secs(10),
        || async {
            let list = c
                .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb")
                .await
                .json();
            let created: Vec<String> = list["items"]
                .as_array()?
                .iter()
                .filter(|e| e["reason"] == "SuccessfulCreate")
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect();
            (created.len() == 3).then_some(created)
        },
    )
    .await;
    assert!(
        events.iter().all(|m| m.starts_with("Created pod: web-")),
        "{events:?}"
    );

    // Scale down, then replace a deleted pod.
    patch(&c, rs_path, json!({"spec": {"replicas": 1}})).await;
    let left = wait_count(&c, 1).await;
    let name = left[0]["metadata"]["name"].as_str().unwrap().to_string();
    let r = c
        .request(
            "DELETE",
            &format!("/api/v1/namespaces/default/pods/{name}"),
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    let replaced = wait_for("a replacement pod", Duration::from_secs(20), || async {
        let pods = web_pods(&c).await;
        (pods.len() == 1 && pods[0]["metadata"]["name"] != name.as_str()).then_some(pods)
    })
    .await;
    // An orphan with matching labels is adopted, and the surplus removed.
    create(&c, "/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).await;
    wait_for(
        "one owned pod after adoption",
        Duration::from_secs(20),
        || async {
            let pods = web_pods(&c).await;
            (pods.len() == 1 && pods[0]["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
                .then_some(())
        },
    )
    .await;
    let _ = replaced;

    // Every namespace gets the default ServiceAccount and the root CA ConfigMap.
    create(
        &c,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c
        .get("/api/v1/namespaces/team/serviceaccounts/default")
        .await
        .status
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no default service account: {}",
            kcm.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/team/serviceaccounts/default",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "default service account again",
        Duration::from_secs(10),
        || async {
            (c.get("/api/v1/namespaces/team/serviceaccounts/default")
                .await
                .status
                == 200)
                .then_some(())
        },
    )
    .await;
    let cm = wait_for("kube-root-ca.crt", Duration::from_secs(10), || async {
        let r = c
            .get("/api/v1/namespaces/team/configmaps/kube-root-ca.crt")
            .await;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(cm["data"]["ca.crt"], std::fs::read_to_string(&ca).unwrap());

    // ClusterRole aggregation.
    let roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    create(&c, roles, &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "monitoring"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]}})).await;
    create(&c, roles, &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "monitoring-endpoints", "labels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["services", "endpoints", "pods"], "verbs": ["get", "list", "watch"]}]})).await;
    let rules = wait_for("aggregated rules", Duration::from_secs(10), || async {
        let r = c.get(&format!("{roles}/monitoring")).await.json();
        r["rules"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(
        rules,
        vec![
            json!({"apiGroups": [""], "resources": ["services", "endpoints", "pods"], "verbs": ["get", "list", "watch"]})
        ]
    );
}

/// Marks every live pod of the namespace Ready, as a kubelet would once it runs.
async fn mark_ready(c: &Client, ns: &str) {
    mark_ready_since(c, ns, "2020-01-01T00:00:00Z").await
}

/// Marks every pending pod of `ns` Running and Ready since `since`.
async fn mark_ready_since(c: &Client, ns: &str, since: &str) {
    let list = c.get(&format!("/api/v1/namespaces/{ns}/pods")).await.json();
    for p in list["items"].as_array().into_iter().flatten() {
        let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready || !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = p["metadata"]["name"].as_str().unwrap();
        let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}]}});
        c.request(
            "PATCH",
            &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
            "application/merge-patch+json",
            status.to_string(),
        )
        .await;
    }
}

/// The Deployment controller rolls a new template out with RollingUpdate: ReplicaSets
/// named `<deployment>-<hash>` with revision annotations, the sum of their replicas
/// never above replicas + maxSurge, old sets scaled to zero, status conditions and
/// `ScalingReplicaSet` events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolling_update() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &[]).await;
    let deploy = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    };
    create(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deploy("nginx:1"),
    )
    .await;
    let d_path = "/apis/apps/v1/namespaces/default/deployments/web";
    let sets = || async {
        let list = c
            .get("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .json();
        list["items"].as_array().cloned().unwrap_or_default()
    };
    let available = |n: i64| {
        let c = c.clone();
        async move {
            wait_for(
                &format!("{n} available"),
                Duration::from_secs(30),
                || async {
                    mark_ready(&c, "default").await;
                    let d = c.get(d_path).await.json();
                    (d["status"]["availableReplicas"] == n
                        && d["status"]["updatedReplicas"] == n
                        && d["status"]["replicas"] == n)
                        .then_some(d)
                },
            )
            .await
        }
    };
    let d = available(4).await;
    let first = sets().await;
    assert_eq!(first.len(), 1);
    let old_name = first[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert!(old_name.starts_with("web-"));
    assert_eq!(
        first[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(old_name, format!("web-{hash}"));
    let cond = |d: &Value, t: &str| {
        d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
            .unwrap_or_default()
    };
    assert_eq!(cond(&d, "Available")["reason"], "MinimumReplicasAvailable");

    // Roll out a new template; the sets never hold more than replicas + maxSurge (4 + 1).
    patch(&c, d_path, json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        mark_ready(&c, "default").await;
        let all = sets().await;
        let total: i64 = all
            .iter()
            .map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0))
            .sum();
        assert!(total <= 5, "surge exceeded: {total}");
        let d = c.get(d_path).await.json();
        let done = all.len() == 2
            && all.iter().any(|rs| {
                rs["metadata"]["name"] == old_name.as_str() && rs["spec"]["replicas"] == 0
            })
            && d["status"]["updatedReplicas"] == 4
            && d["status"]["availableReplicas"] == 4
            && d["status"]["replicas"] == 4;
        if done {
            assert_eq!(cond(&d, "Progressing")["reason"], "NewReplicaSetAvailable");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout incomplete: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new = sets()
        .await
        .into_iter()
        .find(|rs| rs["metadata"]["name"] != old_name.as_str())
        .unwrap();
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let events = c
        .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb")
        .await
        .json();
    let notes: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        notes.contains(&format!("Scaled up replica set {old_name} from 0 to 4").as_str()),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| *n == format!("Scaled down replica set {old_name} from 1 to 0")),
        "{notes:?}"
    );
}

/// Deleting a namespace empties it (every namespaced resource, custom ones included),
/// reports upstream's deletion conditions, and finally removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_empties_it() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=namespace-controller"])
            .await;
    create(
        &c,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    for i in 0..3 {
        create(&c, "/api/v1/namespaces/doomed/configmaps", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}})).await;
    }
    create(
        &c,
        "/api/v1/namespaces/doomed/secrets",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    )
    .await;
    create(&c, "/apis/apps/v1/namespaces/doomed/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})).await;
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/doomed",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for("the namespace gone", Duration::from_secs(30), || async {
        (c.get("/api/v1/namespaces/doomed").await.status == 404).then_some(())
    })
    .await;
    for path in [
        "/api/v1/namespaces/doomed/configmaps",
        "/api/v1/namespaces/doomed/secrets",
        "/apis/apps/v1/namespaces/doomed/deployments",
    ] {
        let list = c.get(path).await.json();
        assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{path}");
    }
}

/// The garbage collector: background cascading deletion (Deployment -> ReplicaSet ->
/// Pods), foreground deletion (the owner waits for its blocking dependents), orphaning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_cascades() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=deployment,replicaset,garbagecollector"],
    )
    .await;
    create(&c, "/apis/apps/v1/namespaces/default/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    wait_count(&c, 2).await;
    let r = c
        .request(
            "DELETE",
            "/apis/apps/v1/namespaces/default/deployments/web?propagationPolicy=Background",
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for(
        "replica sets and pods collected",
        Duration::from_secs(30),
        || async {
            let sets = c
                .get("/apis/apps/v1/namespaces/default/replicasets")
                .await
                .json();
            let none = sets["items"].as_array().is_some_and(|a| a.is_empty());
            (none && web_pods(&c).await.is_empty()).then_some(())
        },
    )
    .await;

    // Foreground: the owner stays (with its finalizer) until the blocking child is gone.
    let cms = "/api/v1/namespaces/default/configmaps";
    let owner = create(
        &c,
        cms,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
    )
    .await;
    let child = |name: &str, owner: &Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "blockOwnerDeletion": true}]}})
    };
    create(&c, cms, &child("child", &owner)).await;
    let r = c
        .request(
            "DELETE",
            &format!("{cms}/owner?propagationPolicy=Foreground"),
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for("owner and child gone", Duration::from_secs(30), || async {
        (c.get(&format!("{cms}/owner")).await.status == 404
            && c.get(&format!("{cms}/child")).await.status == 404)
            .then_some(())
    })
    .await;

    // [sig-api-machinery] Garbage collector should not delete dependents that have both
    // a valid owner and an owner that's waiting for dependents to be deleted: the shared
    // child stays, released from the owner deleted in the foreground.
    let waiting = create(
        &c,
        cms,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "waiting"}}),
    )
    .await;
    let valid = create(
        &c,
        cms,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "valid"}}),
    )
    .await;
    let mut shared = child("shared", &waiting);
    let refs = shared["metadata"]["ownerReferences"]
        .as_array_mut()
        .unwrap();
    refs.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "valid", "uid": valid["metadata"]["uid"]}));
    create(&c, cms, &shared).await;
    create(&c, cms, &child("only-waiting", &waiting)).await;
    let r = c
        .request(
            "DELETE",
            &format!("{cms}/waiting?propagationPolicy=Foreground"),
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for(
        "the waiting owner and its sole child gone",
        Duration::from_secs(30),
        || async {
            (c.get(&format!("{cms}/waiting")).await.status == 404
                && c.get(&format!("{cms}/only-waiting")).await.status == 404)
                .then_some(())
        },
    )
    .await;
    let kept = c.get(&format!("{cms}/shared")).await;
    assert_eq!(kept.status, 200, "the child with a valid owner stays");
    let refs = kept.json()["metadata"]["ownerReferences"].clone();
    assert_eq!(refs.as_array().map(Vec::len), Some(1), "{refs}");
    assert_eq!(refs[0]["name"], "valid");

    // Orphan: the child stays, without its owner reference.
    let owner = create(
        &c,
        cms,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner2"}}),
    )
    .await;
    create(&c, cms, &child("child2", &owner)).await;
    let r = c
        .request(
            "DELETE",
            &format!("{cms}/owner2?propagationPolicy=Orphan"),
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    let kept = wait_for(
        "owner2 gone, child2 orphaned",
        Duration::from_secs(30),
        || async {
            let child = c.get(&format!("{cms}/child2")).await;
            (c.get(&format!("{cms}/owner2")).await.status == 404 && child.status == 200)
                .then(|| child.json())
        },
    )
    .await;
    assert!(
        kept["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{kept}"
    );
}

/// EndpointSlices and Endpoints follow the Service's pods: addresses with ready /
/// serving / terminating conditions, node and zone, named target ports resolved per pod,
/// readiness changes, and removal with the Service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pod_readiness() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=endpointslice,endpoint"])
            .await;
    create(&c, "/api/v1/nodes", &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}})).await;
    let svc = create(&c, "/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})).await;
    let pod_status = |ip: &str, ready: bool| {
        json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    };
    for (name, ip, ready) in [
        ("p1", "10.1.0.1", true),
        ("p2", "10.1.0.2", false),
        ("p3", "", false),
    ] {
        create(&c, "/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}})).await;
        if !ip.is_empty() {
            c.request(
                "PATCH",
                &format!("/api/v1/namespaces/default/pods/{name}/status"),
                "application/merge-patch+json",
                pod_status(ip, ready).to_string(),
            )
            .await;
        }
    }
    let slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb";
    let slice = wait_for(
        "a slice with two endpoints",
        Duration::from_secs(20),
        || async {
            let list = c.get(slices).await.json();
            list["items"]
                .as_array()?
                .first()
                .filter(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 2))
                .cloned()
        },
    )
    .await;
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(
        slice["metadata"]["ownerReferences"][0]["uid"],
        svc["metadata"]["uid"]
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let e1 = &slice["endpoints"][0];
    assert_eq!(e1["addresses"], json!(["10.1.0.1"]));
    assert_eq!(
        e1["conditions"],
        json!({"ready": true, "serving": true, "terminating": false})
    );
    assert_eq!(
        (e1["nodeName"].as_str(), e1["zone"].as_str()),
        (Some("n1"), Some("z1"))
    );
    assert_eq!(slice["endpoints"][1]["conditions"]["ready"], false);
    let ep = wait_for("Endpoints", Duration::from_secs(20), || async {
        let r = c.get("/api/v1/namespaces/default/endpoints/web").await;
        // Both pods seen: the controller may write the Endpoints before the second.
        (r.status == 200)
            .then(|| r.json())
            .filter(|e| !e["subsets"][0]["notReadyAddresses"].is_null())
    })
    .await;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.1.0.1");
    assert_eq!(ep["subsets"][0]["notReadyAddresses"][0]["ip"], "10.1.0.2");
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    // p2 becomes ready: both views follow.
    c.request(
        "PATCH",
        "/api/v1/namespaces/default/pods/p2/status",
        "application/merge-patch+json",
        pod_status("10.1.0.2", true).to_string(),
    )
    .await;
    wait_for("p2 ready everywhere", Duration::from_secs(20), || async {
        let list = c.get(slices).await.json();
        let slice_ok = list["items"][0]["endpoints"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["conditions"]["ready"] == true));
        let ep = c
            .get("/api/v1/namespaces/default/endpoints/web")
            .await
            .json();
        let ep_ok = ep["subsets"][0]["addresses"]
            .as_array()
            .is_some_and(|a| a.len() == 2);
        (slice_ok && ep_ok).then_some(())
    })
    .await;

    // The Service goes: so do its slices and Endpoints.
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/default/services/web",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "slices and endpoints removed",
        Duration::from_secs(20),
        || async {
            let list = c.get(slices).await.json();
            let none = list["items"].as_array().is_some_and(|a| a.is_empty());
            (none
                && c.get("/api/v1/namespaces/default/endpoints/web")
                    .await
                    .status
                    == 404)
                .then_some(())
        },
    )
    .await;
}

/// Node lifecycle: a node whose Lease is no longer renewed turns Unknown after the grace
/// period, is tainted unreachable, and its pods are evicted per their tolerations; when
/// it reports Ready again the taints go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_nodes_are_tainted_and_drained() {
    let s = TestApiServer::start(None, &["--disable-admission-plugins=ServiceAccount,DefaultTolerationSeconds,TaintNodesByCondition", "--authorization-mode=Node,RBAC"]).await;
    let c = s.client.clone();
    let now = || {
        jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let ready = |status: &str| json!({"status": {"conditions": [{"type": "Ready", "status": status, "reason": "KubeletReady", "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}});
    create(
        &c,
        "/api/v1/nodes",
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    c.request(
        "PATCH",
        "/api/v1/nodes/n1/status",
        "application/strategic-merge-patch+json",
        ready("True").to_string(),
    )
    .await;
    let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    create(&c, lease, &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": jiff::Timestamp::now().to_string()}})).await;
    let pod = |name: &str, tolerations: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": "n1", "tolerations": tolerations, "containers": [{"name": "c", "image": "nginx"}]}})
    };
    let unreachable = |secs: Option<i64>| {
        let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        json!([t])
    };
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &pod("plain", json!([])),
    )
    .await;
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &pod("brief", unreachable(Some(2))),
    )
    .await;
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &pod("stays", unreachable(None)),
    )
    .await;
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=nodelifecycle,taint-eviction-controller",
            "--node-monitor-period=200ms",
            "--node-monitor-grace-period=2s",
        ],
    )
    .await;
    // Renewing the Lease keeps the node Ready.
    for _ in 0..12 {
        let renew = json!({"spec": {"renewTime": jiff::Timestamp::now().to_string()}});
        c.request(
            "PATCH",
            &format!("{lease}/n1"),
            "application/merge-patch+json",
            renew.to_string(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let node = c.get("/api/v1/nodes/n1").await.json();
    assert_eq!(node["status"]["conditions"][0]["status"], "True", "{node}");
    // Silence: Unknown, tainted, drained.
    let node = wait_for("node Unknown", Duration::from_secs(20), || async {
        let n = c.get("/api/v1/nodes/n1").await.json();
        let cond = n["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (cond["status"] == "Unknown").then_some((n, cond))
    })
    .await;
    assert_eq!(node.1["reason"], "NodeStatusUnknown");
    assert_eq!(node.1["message"], "Kubelet stopped posting node status.");
    let taints = wait_for("unreachable taints", Duration::from_secs(10), || async {
        let n = c.get("/api/v1/nodes/n1").await.json();
        let t: Vec<(String, String)> = n["spec"]["taints"]
            .as_array()?
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap_or_default().to_string(),
                    t["effect"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (t.len() == 2).then_some(t)
    })
    .await;
    assert!(
        taints.contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into())),
        "{taints:?}"
    );
    let gone = |name: &'static str| {
        let c = c.clone();
        async move {
            wait_for(
                &format!("{name} evicted"),
                Duration::from_secs(20),
                || async {
                    let r = c
                        .get(&format!("/api/v1/namespaces/default/pods/{name}"))
                        .await;
                    (r.status == 404 || !r.json()["metadata"]["deletionTimestamp"].is_null())
                        .then_some(())
                },
            )
            .await
        }
    };
    gone("plain").await;
    gone("brief").await;
    let stays = c.get("/api/v1/namespaces/default/pods/stays").await.json();
    assert!(stays["metadata"]["deletionTimestamp"].is_null());
    // The kubelet is back: the taints go.
    c.request(
        "PATCH",
        "/api/v1/nodes/n1/status",
        "application/strategic-merge-patch+json",
        ready("True").to_string(),
    )
    .await;
    let renew = json!({"spec": {"renewTime": jiff::Timestamp::now().to_string()}});
    c.request(
        "PATCH",
        &format!("{lease}/n1"),
        "application/merge-patch+json",
        renew.to_string(),
    )
    .await;
    wait_for("taints removed", Duration::from_secs(10), || async {
        let n = c.get("/api/v1/nodes/n1").await.json();
        n["spec"]["taints"]
            .as_array()
            .is_none_or(|t| t.is_empty())
            .then_some(())
    })
    .await;
}

/// Jobs: parallelism and completions with pods tracked by the job-tracking finalizer,
/// Complete with its events, and a failing job hitting its backoffLimit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_and_fail() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=job"]).await;
    let job = |name: &str, extra: Value| {
        let mut j = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
        for (k, v) in extra.as_object().unwrap() {
            j["spec"][k] = v.clone();
        }
        j
    };
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    create(
        &c,
        jobs,
        &job("pi", json!({"completions": 3, "parallelism": 2})),
    )
    .await;
    let job_pods = |name: &'static str| {
        let c = c.clone();
        async move {
            let list = c.get(&format!("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3D{name}")).await.json();
            list["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let finish = |pod: &Value, phase: &str| {
        let c = c.clone();
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let phase = phase.to_string();
        async move {
            let body = json!({"status": {"phase": phase}});
            c.request(
                "PATCH",
                &format!("/api/v1/namespaces/default/pods/{name}/status"),
                "application/merge-patch+json",
                body.to_string(),
            )
            .await;
        }
    };
    let first = wait_for("two pods", Duration::from_secs(20), || async {
        let pods = job_pods("pi").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    assert!(
        first
            .iter()
            .all(|p| p["metadata"]["finalizers"] == json!(["batch.kubernetes.io/job-tracking"]))
    );
    // Finish pods as they come until three succeeded.
    let done = wait_for("job complete", Duration::from_secs(30), || async {
        for p in job_pods("pi").await {
            if p["status"]["phase"] != "Succeeded" {
                finish(&p, "Succeeded").await;
            }
        }
        let j = c.get(&format!("{jobs}/pi")).await.json();
        let complete = j["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        });
        complete.then_some(j)
    })
    .await;
    assert_eq!(done["status"]["succeeded"], 3);
    assert!(done["status"]["completionTime"].is_string());
    let types: Vec<&str> = done["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    let pods = job_pods("pi").await;
    assert!(
        pods.iter().all(|p| p["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())),
        "finalizers released"
    );

    // backoffLimit 0: the first failure fails the job.
    create(&c, jobs, &job("bad", json!({"backoffLimit": 0}))).await;
    let pod = wait_for("a pod", Duration::from_secs(20), || async {
        job_pods("bad").await.into_iter().next()
    })
    .await;
    finish(&pod, "Failed").await;
    let failed = wait_for("job failed", Duration::from_secs(20), || async {
        let j = c.get(&format!("{jobs}/bad")).await.json();
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Failed")
            .cloned()
    })
    .await;
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
}

/// DaemonSets: one pod per eligible node (pinned by node affinity, with upstream's
/// daemon tolerations), following nodes that join, get labelled out, or go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_nodes() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=daemonset"]).await;
    let node = |name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}});
    create(&c, "/api/v1/nodes", &node("a", json!({"role": "worker"}))).await;
    create(&c, "/api/v1/nodes", &node("b", json!({"role": "worker"}))).await;
    create(
        &c,
        "/api/v1/nodes",
        &node("control", json!({"role": "control"})),
    )
    .await;
    create(&c, "/apis/apps/v1/namespaces/default/daemonsets", &json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": {"role": "worker"}, "containers": [{"name": "c", "image": "agent"}]}}}})).await;
    let pinned = || async {
        let list = c
            .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dagent")
            .await
            .json();
        let mut nodes: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0]["values"][0].as_str().unwrap_or_default().to_string())
            .collect();
        nodes.sort();
        nodes
    };
    let wait_nodes = |want: Vec<&'static str>| async move {
        wait_for(
            &format!("daemon pods on {want:?}"),
            Duration::from_secs(20),
            || async { (pinned().await == want).then_some(()) },
        )
        .await
    };
    wait_nodes(vec!["a", "b"]).await;
    let list = c
        .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dagent")
        .await
        .json();
    let tolerations = &list["items"][0]["spec"]["tolerations"];
    assert!(
        tolerations
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"),
        "{tolerations}"
    );
    create(&c, "/api/v1/nodes", &node("c", json!({"role": "worker"}))).await;
    wait_nodes(vec!["a", "b", "c"]).await;
    patch(
        &c,
        "/api/v1/nodes/a",
        json!({"metadata": {"labels": {"role": "retired"}}}),
    )
    .await;
    wait_nodes(vec!["b", "c"]).await;
    // The pod on the retired node is gone once the status settles.
    wait_for("status", Duration::from_secs(10), || async {
        let d = c
            .get("/apis/apps/v1/namespaces/default/daemonsets/agent")
            .await
            .json();
        let st = &d["status"];
        (st["desiredNumberScheduled"] == 2
            && st["currentNumberScheduled"] == 2
            && st["numberMisscheduled"] == 0)
            .then_some(())
    })
    .await;
}

/// StatefulSets: OrderedReady creates web-0, then web-1 once web-0 is Running and Ready,
/// with a claim per pod from the claim template; scaling down removes the highest
/// ordinal and keeps the claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_ordered_pods_and_claims() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,DefaultStorageClass"],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=statefulset"]).await;
    create(&c, "/apis/apps/v1/namespaces/default/statefulsets", &json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "postgres", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})).await;
    let names = || async {
        let list = c
            .get("/api/v1/namespaces/default/pods?labelSelector=app%3Ddb")
            .await
            .json();
        let mut n: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let wait_names = |want: Vec<&'static str>| async move {
        wait_for(
            &format!("pods {want:?}"),
            Duration::from_secs(20),
            || async { (names().await == want).then_some(()) },
        )
        .await
    };
    wait_names(vec!["db-0"]).await;
    // Not ready yet: no db-1.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names().await, ["db-0"]);
    let pod = c.get("/api/v1/namespaces/default/pods/db-0").await.json();
    assert_eq!(
        (
            pod["spec"]["hostname"].as_str(),
            pod["spec"]["subdomain"].as_str()
        ),
        (Some("db-0"), Some("db"))
    );
    assert_eq!(
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "db-0"
    );
    assert_eq!(
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-db-0"
    );
    assert_eq!(
        c.get("/api/v1/namespaces/default/persistentvolumeclaims/data-db-0")
            .await
            .status,
        200
    );
    // Ready pods let the next ordinal come.
    wait_for("three pods", Duration::from_secs(30), || async {
        mark_ready(&c, "default").await;
        (names().await == ["db-0", "db-1", "db-2"]).then_some(())
    })
    .await;
    patch(
        &c,
        "/apis/apps/v1/namespaces/default/statefulsets/db",
        json!({"spec": {"replicas": 1}}),
    )
    .await;
    wait_for("scaled to one", Duration::from_secs(30), || async {
        mark_ready(&c, "default").await;
        (names().await == ["db-0"]).then_some(())
    })
    .await;
    assert_eq!(
        c.get("/api/v1/namespaces/default/persistentvolumeclaims/data-db-2")
            .await
            .status,
        200,
        "claims are retained"
    );
}

/// Pod GC removes pods bound to nodes that no longer exist; TTL-after-finished deletes a
/// finished Job (and, foreground, its pods) after its ttlSecondsAfterFinished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_and_ttl_after_finished() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan"},
        "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=podgc,job,ttl-after-finished,garbagecollector"],
    )
    .await;
    wait_for("orphan collected", Duration::from_secs(20), || async {
        (c.get("/api/v1/namespaces/default/pods/orphan").await.status == 404).then_some(())
    })
    .await;
    create(&c, "/apis/batch/v1/namespaces/default/jobs", &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"ttlSecondsAfterFinished": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    wait_for("job gone after it succeeded", Duration::from_secs(30), || async {
        let list = c.get("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Donce").await.json();
        for p in list["items"].as_array().into_iter().flatten() {
            if p["status"]["phase"] != "Succeeded" {
                let name = p["metadata"]["name"].as_str().unwrap();
                c.request("PATCH", &format!("/api/v1/namespaces/default/pods/{name}/status"), "application/merge-patch+json", json!({"status": {"phase": "Succeeded"}}).to_string()).await;
            }
        }
        (c.get("/apis/batch/v1/namespaces/default/jobs/once").await.status == 404).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controllers_keep_their_pods() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=replicationcontroller"])
            .await;
    let rc = c.create("/api/v1/namespaces/default/replicationcontrollers", &json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    // The selector defaults to the template's labels.
    assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
    let pods = wait_count(&c, 2).await;
    for p in &pods {
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["apiVersion"], "v1");
        assert_eq!(owner["kind"], "ReplicationController");
        assert_eq!(owner["uid"], rc["metadata"]["uid"]);
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    }
    let path = "/api/v1/namespaces/default/replicationcontrollers/web";
    wait_for("rc status", Duration::from_secs(20), || async {
        let rc = c.get(path).await.json();
        (rc["status"]["replicas"] == 2
            && rc["status"]["observedGeneration"] == rc["metadata"]["generation"])
            .then_some(())
    })
    .await;
    // Scaling through the scale subresource, as `kubectl scale rc` does.
    let r = c
        .merge_patch(&format!("{path}/scale"), &json!({"spec": {"replicas": 1}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_count(&c, 1).await;
    wait_for(
        "rc status after scale-down",
        Duration::from_secs(20),
        || async { (c.get(path).await.json()["status"]["replicas"] == 1).then_some(()) },
    )
    .await;
}

/// (name, spec.replicas, revision) of the deployment's ReplicaSets, oldest first.
async fn replica_sets(c: &Client, ns: &str, app: &str) -> Vec<(String, i64, String)> {
    let list = c
        .get(&format!(
            "/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=app%3D{app}"
        ))
        .await
        .json();
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|rs| {
        rs["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    items
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap().to_string(),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn progressing(d: &Value) -> Value {
    d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap_or(Value::Null)
}

/// kubectl's rollout verbs against the Deployment controller: pause (no rollout, the
/// sets scaled in proportion), resume, undo (the old set becomes the newest revision),
/// and a rollout that exceeds its progress deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pause_scale_undo_and_deadline() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=deployment,replicaset"])
            .await;
    let dpath = "/apis/apps/v1/namespaces/default/deployments/web";
    c.create("/apis/apps/v1/namespaces/default/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})).await;
    wait_for(
        "first rollout complete",
        Duration::from_secs(30),
        || async {
            mark_ready(&c, "default").await;
            let d = c.get(dpath).await.json();
            (progressing(&d)["reason"] == "NewReplicaSetAvailable").then_some(())
        },
    )
    .await;

    // A new template whose pods never get ready: the rollout stalls at 8 old + 5 new.
    s.kubectl_ok(&["set", "image", "deployment/web", "c=nginx:2"], None);
    let sets = wait_for(
        "rollout stalled at 8+5",
        Duration::from_secs(30),
        || async {
            let sets = replica_sets(&c, "default", "web").await;
            (sets.len() == 2 && sets[0].1 == 8 && sets[1].1 == 5).then_some(sets)
        },
    )
    .await;
    assert_eq!((sets[0].2.as_str(), sets[1].2.as_str()), ("1", "2"));

    // Paused and scaled to 20: 10 more replicas shared in proportion (8 -> 14, 5 -> 9).
    s.kubectl_ok(&["rollout", "pause", "deployment/web"], None);
    wait_for("paused condition", Duration::from_secs(20), || async {
        let p = progressing(&c.get(dpath).await.json());
        (p["reason"] == "DeploymentPaused" && p["status"] == "Unknown").then_some(())
    })
    .await;
    s.kubectl_ok(&["scale", "deployment/web", "--replicas=20"], None);
    wait_for(
        "proportional scale 14+9",
        Duration::from_secs(20),
        || async {
            let sets = replica_sets(&c, "default", "web").await;
            (sets.len() == 2 && sets[0].1 == 14 && sets[1].1 == 9).then_some(())
        },
    )
    .await;
    // While paused a new template starts no rollout.
    s.kubectl_ok(&["set", "image", "deployment/web", "c=nginx:3"], None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(replica_sets(&c, "default", "web").await.len(), 2);
    s.kubectl_ok(&["set", "image", "deployment/web", "c=nginx:2"], None);
    s.kubectl_ok(&["rollout", "resume", "deployment/web"], None);
    wait_for("resumed", Duration::from_secs(20), || async {
        let p = progressing(&c.get(dpath).await.json());
        (p["reason"] != "DeploymentPaused").then_some(())
    })
    .await;

    // Undo: the first set's template comes back as revision 3.
    s.kubectl_ok(&["rollout", "undo", "deployment/web"], None);
    wait_for(
        "first set is revision 3, rollout complete",
        Duration::from_secs(30),
        || async {
            mark_ready(&c, "default").await;
            let sets = replica_sets(&c, "default", "web").await;
            let d = c.get(dpath).await.json();
            (sets[0].2 == "3"
                && sets[0].1 == 20
                && sets[1].1 == 0
                && d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
                && progressing(&d)["reason"] == "NewReplicaSetAvailable")
                .then_some(())
        },
    )
    .await;
    let rs = c
        .get(&format!(
            "/apis/apps/v1/namespaces/default/replicasets/{}",
            sets[0].0
        ))
        .await
        .json();
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    let history = s.kubectl_ok(&["rollout", "history", "deployment/web"], None);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");

    // A rollout that makes no progress within its deadline is reported, and kubectl says so.
    c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "slow"}}),
    )
    .await;
    c.create("/apis/apps/v1/namespaces/slow/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "slow"},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 2, "selector": {"matchLabels": {"app": "slow"}},
            "template": {"metadata": {"labels": {"app": "slow"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    let d = wait_for(
        "progress deadline exceeded",
        Duration::from_secs(20),
        || async {
            let d = c
                .get("/apis/apps/v1/namespaces/slow/deployments/slow")
                .await
                .json();
            (progressing(&d)["reason"] == "ProgressDeadlineExceeded").then_some(d)
        },
    )
    .await;
    let p = progressing(&d);
    assert_eq!(p["status"], "False");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .ends_with("has timed out progressing."),
        "{p}"
    );
    let (ok, _, err) = s.kubectl(
        &[
            "-n",
            "slow",
            "rollout",
            "status",
            "deployment/slow",
            "--timeout=20s",
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("deployment \"slow\" exceeded its progress deadline"),
        "{err}"
    );
}

/// Two controller-managers with leader election on `kube-system/kube-controller-manager`:
/// the leader runs the controllers; when it is killed the standby takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let fast = [
        "--controllers=replicaset",
        "--leader-elect=true",
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut first = TestControllerManager::start(&s.kubeconfig(), &fast).await;
    let lease_path =
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager";
    let holder = || async {
        let r = c.get(lease_path).await;
        (r.status == 200).then(|| {
            r.json()["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    };
    let leader = wait_for("a lease holder", Duration::from_secs(20), holder).await;
    let _second = TestControllerManager::start(&s.kubeconfig(), &fast).await;
    let rs = "/apis/apps/v1/namespaces/default/replicasets";
    c.create(rs, &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    wait_count(&c, 2).await;
    assert_eq!(holder().await.unwrap(), leader);

    first.kill();
    let next = wait_for("another lease holder", Duration::from_secs(30), || async {
        holder().await.filter(|h| *h != leader)
    })
    .await;
    assert!(next.contains('_'), "identity is <hostname>_<uid>: {next}");
    assert_eq!(
        c.get(lease_path).await.json()["spec"]["leaseTransitions"],
        1
    );
    let r = c
        .merge_patch(&format!("{rs}/web"), &json!({"spec": {"replicas": 3}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_count(&c, 3).await;
}

fn pv(name: &str, size: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": format!("/tmp/{name}")}}})
}

fn pvc(name: &str, class: &str, size: &str, selector: Option<Value>) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class, "resources": {"requests": {"storage": size}}}});
    if let Some(s) = selector {
        v["spec"]["selector"] = s;
    }
    v
}

/// The PersistentVolume binder, with PVC/PV protection: the smallest fitting volume is
/// bound both ways, a claim in use outlives its deletion until its pod goes, a retained
/// volume is Released, and claims of a provisioner's class wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_volumes_bind_protect_and_release() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=persistentvolume-binder,pvc-protection,pv-protection"],
    )
    .await;
    c.create(
        "/api/v1/persistentvolumes",
        &pv("small", "1Gi", json!({"tier": "a"})),
    )
    .await;
    c.create(
        "/api/v1/persistentvolumes",
        &pv("big", "5Gi", json!({"tier": "a"})),
    )
    .await;
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    c.create(claims, &pvc("data", "manual", "500Mi", None))
        .await;
    let claim = wait_for("claim bound", Duration::from_secs(20), || async {
        let cl = c.get(&format!("{claims}/data")).await.json();
        (cl["status"]["phase"] == "Bound").then_some(cl)
    })
    .await;
    assert_eq!(claim["spec"]["volumeName"], "small");
    assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(
        claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
        "yes"
    );
    assert_eq!(
        claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    let vol = wait_for("volume bound", Duration::from_secs(20), || async {
        let v = c.get("/api/v1/persistentvolumes/small").await.json();
        (v["status"]["phase"] == "Bound").then_some(v)
    })
    .await;
    assert_eq!(vol["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
    // The other volume becomes Available once the binder has synced it.
    wait_for(
        "the unclaimed volume Available",
        Duration::from_secs(20),
        || async {
            let v = c.get("/api/v1/persistentvolumes/big").await.json();
            (v["status"]["phase"] == "Available").then_some(())
        },
    )
    .await;

    // Nothing fits a selector no volume matches, and the class names no StorageClass.
    c.create(
        claims,
        &pvc(
            "picky",
            "manual",
            "1Gi",
            Some(json!({"matchLabels": {"tier": "b"}})),
        ),
    )
    .await;
    let failed = wait_for(
        "ProvisioningFailed event",
        Duration::from_secs(20),
        || async {
            let list = c
                .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dpicky")
                .await
                .json();
            list["items"]
                .as_array()?
                .iter()
                .find(|e| e["reason"] == "ProvisioningFailed")
                .cloned()
        },
    )
    .await;
    assert_eq!(
        failed["message"],
        "storageclass.storage.k8s.io \"manual\" not found"
    );
    assert_eq!(failed["reportingComponent"], "persistentvolume-controller");

    // Protection: the claim survives its deletion while a pod uses it.
    c.create(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}),
    )
    .await;
    let r = c
        .send_json("DELETE", &format!("{claims}/data"), &json!({}))
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cl = c.get(&format!("{claims}/data")).await.json();
    assert!(cl["metadata"]["deletionTimestamp"].is_string(), "{cl}");
    assert_eq!(
        cl["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    let r = c
        .send_json(
            "DELETE",
            "/api/v1/namespaces/default/pods/user",
            &json!({"gracePeriodSeconds": 0}),
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for("claim gone", Duration::from_secs(20), || async {
        (c.get(&format!("{claims}/data")).await.status == 404).then_some(())
    })
    .await;
    wait_for(
        "retained volume released",
        Duration::from_secs(20),
        || async {
            (c.get("/api/v1/persistentvolumes/small").await.json()["status"]["phase"] == "Released")
                .then_some(())
        },
    )
    .await;
    let r = c
        .send_json("DELETE", "/api/v1/persistentvolumes/small", &json!({}))
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for(
        "released volume deleted",
        Duration::from_secs(20),
        || async { (c.get("/api/v1/persistentvolumes/small").await.status == 404).then_some(()) },
    )
    .await;

    // A provisioner's class: the claim is handed to it, and bound to what it creates.
    c.create(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast"}, "provisioner": "example.com/csi"}),
    )
    .await;
    let dyn_claim = c.create(claims, &pvc("dyn", "fast", "2Gi", None)).await;
    wait_for(
        "claim handed to the provisioner",
        Duration::from_secs(20),
        || async {
            let cl = c.get(&format!("{claims}/dyn")).await.json();
            (cl["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"]
                == "example.com/csi")
                .then_some(())
        },
    )
    .await;
    let mut made = pv("pvc-dyn", "2Gi", json!({}));
    made["spec"]["storageClassName"] = json!("fast");
    made["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    made["metadata"]["annotations"] = json!({"pv.kubernetes.io/provisioned-by": "example.com/csi"});
    made["spec"]["claimRef"] = json!({"kind": "PersistentVolumeClaim", "namespace": "default", "name": "dyn", "uid": dyn_claim["metadata"]["uid"]});
    c.create("/api/v1/persistentvolumes", &made).await;
    wait_for(
        "provisioned claim bound",
        Duration::from_secs(20),
        || async {
            let cl = c.get(&format!("{claims}/dyn")).await.json();
            (cl["status"]["phase"] == "Bound" && cl["spec"]["volumeName"] == "pvc-dyn")
                .then_some(())
        },
    )
    .await;
}

/// Indexed jobs: each index runs in a pod named and labelled after it (hostname and
/// JOB_COMPLETION_INDEX too), completions are counted once per index, and the job
/// completes when every index has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_run_each_index_once() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=job"]).await;
    c.create("/apis/batch/v1/namespaces/default/jobs", &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
        "spec": {"completions": 3, "parallelism": 2, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    let live = || async {
        let list = c.get("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Didx").await.json();
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p["status"]["phase"] != "Succeeded" && p["metadata"]["deletionTimestamp"].is_null()
            })
            .collect::<Vec<Value>>()
    };
    let index = |p: &Value| {
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = wait_for(
        "indexes 0 and 1 running",
        Duration::from_secs(20),
        || async {
            let pods = live().await;
            let mut idx: Vec<String> = pods.iter().map(index).collect();
            idx.sort();
            (idx == ["0", "1"]).then_some(pods)
        },
    )
    .await;
    for p in &first {
        let i = index(p);
        assert!(
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("idx-{i}-"))
        );
        assert_eq!(
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
            i.as_str()
        );
        assert_eq!(p["spec"]["hostname"], format!("idx-{i}"));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
    }
    let succeed = |p: Value| {
        let c = c.clone();
        async move {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let r = c
                .merge_patch(
                    &format!("/api/v1/namespaces/default/pods/{name}/status"),
                    &json!({"status": {"phase": "Succeeded"}}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    let one = first.iter().find(|p| index(p) == "1").unwrap().clone();
    succeed(one).await;
    let path = "/apis/batch/v1/namespaces/default/jobs/idx";
    wait_for(
        "index 1 completed, index 2 started",
        Duration::from_secs(20),
        || async {
            let j = c.get(path).await.json();
            let mut idx: Vec<String> = live().await.iter().map(index).collect();
            idx.sort();
            (j["status"]["completedIndexes"] == "1"
                && j["status"]["succeeded"] == 1
                && idx == ["0", "2"])
            .then_some(())
        },
    )
    .await;
    for p in live().await {
        succeed(p).await;
    }
    let j = wait_for("job complete", Duration::from_secs(20), || async {
        let j = c.get(path).await.json();
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Complete")
            .then_some(j)
    })
    .await;
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["succeeded"], 3);
}

/// EndpointSlice mirroring: hand-written Endpoints of a selector-less Service appear as
/// EndpointSlices (kube-proxy reads only slices), follow their changes, and go when the
/// Service gets a selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_selectorless_services_are_mirrored() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=endpointslicemirroring"])
            .await;
    c.create(
        "/api/v1/namespaces/default/services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "web", "port": 80}]}}),
    )
    .await;
    let eps = c.create("/api/v1/namespaces/default/endpoints", &json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "ext", "labels": {"team": "a"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
            "ports": [{"name": "web", "port": 8080}]}]})).await;
    let slices = || async {
        let list = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dext").await.json();
        list["items"].as_array().cloned().unwrap_or_default()
    };
    let slice = wait_for("mirrored slice", Duration::from_secs(20), || async {
        let list = slices().await;
        (list.len() == 1).then(|| list[0].clone())
    })
    .await;
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["labels"]["team"], "a");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    assert_eq!(
        slice["metadata"]["ownerReferences"][0]["uid"],
        eps["metadata"]["uid"]
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
    );
    let ready: Vec<(String, bool)> = slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap().to_string(),
                e["conditions"]["ready"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ready,
        [
            ("192.0.2.10".to_string(), true),
            ("192.0.2.11".to_string(), false)
        ]
    );

    let r = c.merge_patch("/api/v1/namespaces/default/endpoints/ext", &json!({"subsets": [{"addresses": [{"ip": "192.0.2.12"}], "ports": [{"name": "web", "port": 8080}]}]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "slice follows the Endpoints",
        Duration::from_secs(20),
        || async {
            let list = slices().await;
            (list.len() == 1
                && list[0]["endpoints"].as_array().map(|a| a.len()) == Some(1)
                && list[0]["endpoints"][0]["addresses"][0] == "192.0.2.12")
                .then_some(())
        },
    )
    .await;
    // With a selector the EndpointSlice controller owns the Service: the mirror goes.
    let r = c
        .merge_patch(
            "/api/v1/namespaces/default/services/ext",
            &json!({"spec": {"selector": {"app": "x"}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "mirrored slice removed",
        Duration::from_secs(20),
        || async { slices().await.is_empty().then_some(()) },
    )
    .await;
}

/// ControllerRevisions: DaemonSet and StatefulSet templates are kept as numbered
/// revisions, so that `kubectl rollout history` lists them and `kubectl rollout undo`
/// brings an old template back as the newest revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_and_statefulset_rollout_history() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=daemonset,statefulset"])
            .await;
    c.create("/apis/apps/v1/namespaces/default/daemonsets", &json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}})).await;
    c.create("/apis/apps/v1/namespaces/default/statefulsets", &json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"}, "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "db:1"}]}}}})).await;
    let history = |kind: &str| {
        let out = s.kubectl_ok(&["rollout", "history", kind], None);
        out.lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect::<Vec<String>>()
    };
    let revisions = |app: &'static str| {
        let c = c.clone();
        async move {
            let list = c
                .get(&format!(
                    "/apis/apps/v1/namespaces/default/controllerrevisions?labelSelector=app%3D{app}"
                ))
                .await
                .json();
            let mut revs: Vec<(i64, String)> = list["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    (
                        r["revision"].as_i64().unwrap(),
                        r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            revs.sort();
            revs
        }
    };
    for (kind, app, image) in [("ds/agent", "agent", "agent"), ("sts/db", "db", "db")] {
        wait_for(
            &format!("{kind} revision 1"),
            Duration::from_secs(20),
            || async { (revisions(app).await == [(1, format!("{image}:1"))]).then_some(()) },
        )
        .await;
        s.kubectl_ok(&["set", "image", kind, &format!("c={image}:2")], None);
        wait_for(
            &format!("{kind} revision 2"),
            Duration::from_secs(20),
            || async { (revisions(app).await.len() == 2).then_some(()) },
        )
        .await;
        assert_eq!(history(kind), ["1", "2"]);
        s.kubectl_ok(&["rollout", "undo", kind], None);
        wait_for(
            &format!("{kind} first template back as revision 3"),
            Duration::from_secs(20),
            || async {
                (revisions(app).await == [(2, format!("{image}:2")), (3, format!("{image}:1"))])
                    .then_some(())
            },
        )
        .await;
        assert_eq!(history(kind), ["2", "3"]);
    }
    let sts = c
        .get("/apis/apps/v1/namespaces/default/statefulsets/db")
        .await
        .json();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "db:1"
    );
    assert!(
        sts["status"]["updateRevision"]
            .as_str()
            .unwrap()
            .starts_with("db-")
    );
}

/// The TTL controller annotates nodes with the Secret/ConfigMap cache ttl for the
/// cluster's size (0 s for a small cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_the_cache_ttl_annotation() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=ttl"]).await;
    for n in ["a", "b"] {
        c.create(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}),
        )
        .await;
    }
    for n in ["a", "b"] {
        wait_for(
            &format!("node {n} ttl"),
            Duration::from_secs(20),
            || async {
                let node = c.get(&format!("/api/v1/nodes/{n}")).await.json();
                (node["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] == "0")
                    .then_some(())
            },
        )
        .await;
    }
}

/// A Job's podFailurePolicy: a disrupted pod is ignored (not counted, replaced even
/// with backoffLimit 0); an exit code listed under FailJob fails the Job at once with
/// upstream's reason and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_ignores_and_fails_jobs() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=job"]).await;
    c.create("/apis/batch/v1/namespaces/default/jobs", &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pfp"},
        "spec": {"backoffLimit": 0, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    let live = || async {
        let list = c.get("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dpfp").await.json();
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p["status"]["phase"] != "Failed")
            .collect::<Vec<Value>>()
    };
    let fail = |name: String, status: Value| {
        let c = c.clone();
        async move {
            let r = c
                .merge_patch(
                    &format!("/api/v1/namespaces/default/pods/{name}/status"),
                    &json!({"status": status}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    let first = wait_for("a pod", Duration::from_secs(20), || async {
        live().await.into_iter().next()
    })
    .await;
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    // Evicted: the Eviction API adds DisruptionTarget and deletes the pod, which the
    // tracking finalizer keeps while it terminates. Under a pod failure policy it is
    // neither counted nor replaced before it is Failed (`podReplacementPolicy: Failed`).
    let r = c
        .send_json(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{first_name}/eviction"),
            &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": first_name}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let path = "/apis/batch/v1/namespaces/default/jobs/pfp";
    let j = wait_for(
        "the terminating pod counted",
        Duration::from_secs(20),
        || async {
            let j = c.get(path).await.json();
            (j["status"]["terminating"] == 1).then_some(j)
        },
    )
    .await;
    assert_eq!(j["spec"]["podReplacementPolicy"], "Failed");
    assert_eq!(
        j["status"]["failed"].as_i64().unwrap_or(0),
        0,
        "{}",
        j["status"]
    );
    assert_eq!(
        live().await.len(),
        1,
        "no replacement while the pod terminates"
    );
    fail(first_name.clone(), json!({"phase": "Failed"})).await;
    let second = wait_for("a replacement pod", Duration::from_secs(30), || async {
        live()
            .await
            .into_iter()
            .find(|p| p["metadata"]["name"] != first_name.as_str())
    })
    .await;
    let j = c.get(path).await.json();
    assert!(
        j["status"]["failed"].as_i64().unwrap_or(0) == 0,
        "an ignored failure is not counted: {}",
        j["status"]
    );
    let second_name = second["metadata"]["name"].as_str().unwrap().to_string();
    fail(second_name.clone(), json!({"phase": "Failed", "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 42, "reason": "Error"}}}]})).await;
    let j = wait_for("job failed by policy", Duration::from_secs(20), || async {
        let j = c.get(path).await.json();
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Failed")
            .then_some(j)
    })
    .await;
    let failed = j["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()
        .clone();
    assert_eq!(failed["reason"], "PodFailurePolicy");
    assert_eq!(
        failed["message"],
        format!(
            "Container c for pod default/{second_name} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
    assert_eq!(j["status"]["failed"], 1);
}

/// StatefulSet persistentVolumeClaimRetentionPolicy Delete/Delete: a claim goes with
/// its scaled-away pod, the rest with the set (through the garbage collector).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_claims_follow_the_retention_policy() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount,DefaultStorageClass",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=statefulset,garbagecollector,pvc-protection"],
    )
    .await;
    let sts = "/apis/apps/v1/namespaces/default/statefulsets";
    c.create(sts, &json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kv"},
        "spec": {"replicas": 2, "serviceName": "kv", "podManagementPolicy": "Parallel", "selector": {"matchLabels": {"app": "kv"}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "template": {"metadata": {"labels": {"app": "kv"}}, "spec": {"containers": [{"name": "c", "image": "kv", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})).await;
    let claim = |n: &'static str| {
        let c = c.clone();
        async move {
            c.get(&format!(
                "/api/v1/namespaces/default/persistentvolumeclaims/{n}"
            ))
            .await
        }
    };
    for n in ["data-kv-0", "data-kv-1"] {
        wait_for(
            &format!("{n} owned by the set"),
            Duration::from_secs(20),
            || async {
                let r = claim(n).await;
                (r.status == 200
                    && r.json()["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet")
                    .then_some(())
            },
        )
        .await;
    }
    let r = c
        .merge_patch(&format!("{sts}/kv"), &json!({"spec": {"replicas": 1}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the scaled-away claim deleted",
        Duration::from_secs(30),
        || async { (claim("data-kv-1").await.status == 404).then_some(()) },
    )
    .await;
    assert_eq!(claim("data-kv-0").await.status, 200);
    let r = c
        .send_json(
            "DELETE",
            &format!("{sts}/kv"),
            &json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the set's claims deleted with it",
        Duration::from_secs(30),
        || async { (claim("data-kv-0").await.status == 404).then_some(()) },
    )
    .await;
}

/// A controller-manager restarted in the middle of creating pods, and again after,
/// never creates more than asked: the new instance counts what exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_creates_no_duplicate_pods() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let mut kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=replicaset"]).await;
    c.create("/apis/apps/v1/namespaces/default/replicasets", &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 40, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    // Killed while the slow-start batches are under way.
    wait_for("some pods", Duration::from_secs(20), || async {
        (!web_pods(&c).await.is_empty()).then_some(())
    })
    .await;
    kcm.kill();
    let _again = TestControllerManager::start(&s.kubeconfig(), &["--controllers=replicaset"]).await;
    wait_count(&c, 40).await;
    // Settled: a further restart changes nothing.
    drop(_again);
    let _third = TestControllerManager::start(&s.kubeconfig(), &["--controllers=replicaset"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(web_pods(&c).await.len(), 40);
    let list = c
        .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
        .await
        .json();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        40,
        "no pod was created and deleted again"
    );
}

/// Generic ephemeral volumes: the pod's claim `<pod>-<volume>` is made from the template,
/// owned by the pod, and goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_volumes_get_claims_owned_by_their_pod() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount,DefaultStorageClass",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=ephemeral-volume,garbagecollector,pvc-protection"],
    )
    .await;
    let pod = c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}],
            "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"type": "scratch"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]}})).await;
    let path = "/api/v1/namespaces/default/persistentvolumeclaims/app-scratch";
    let claim = wait_for("ephemeral claim", Duration::from_secs(20), || async {
        let r = c.get(path).await;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(claim["metadata"]["labels"]["type"], "scratch");
    assert_eq!(
        claim["metadata"]["ownerReferences"][0]["uid"],
        pod["metadata"]["uid"]
    );
    assert_eq!(claim["metadata"]["ownerReferences"][0]["controller"], true);
    let r = c
        .send_json(
            "DELETE",
            "/api/v1/namespaces/default/pods/app",
            &json!({"gracePeriodSeconds": 0}),
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_for(
        "claim gone with its pod",
        Duration::from_secs(30),
        || async { (c.get(path).await.status == 404).then_some(()) },
    )
    .await;
}

/// DaemonSet RollingUpdate with maxSurge 1 / maxUnavailable 0: a node gets its new pod
/// next to the old one, which goes only once the new one is available; one node at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_surges_one_node_at_a_time() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=daemonset"]).await;
    for n in ["n1", "n2"] {
        c.create(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}),
        )
        .await;
    }
    c.create("/apis/apps/v1/namespaces/default/daemonsets", &json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}})).await;
    let images = || async {
        let list = c
            .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dagent")
            .await
            .json();
        let mut v: Vec<String> = list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    // Both old pods available as the controller sees them; an unavailable old pod would
    // be replaced at once, beside the surge.
    wait_for("two available agents", Duration::from_secs(20), || async {
        mark_ready(&c, "default").await;
        let ds = c
            .get("/apis/apps/v1/namespaces/default/daemonsets/agent")
            .await
            .json();
        (images().await == ["agent:1", "agent:1"] && ds["status"]["numberAvailable"] == 2)
            .then_some(())
    })
    .await;
    let r = c.merge_patch("/apis/apps/v1/namespaces/default/daemonsets/agent", &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // One surge pod, both old ones still running.
    wait_for("one surge pod", Duration::from_secs(20), || async {
        (images().await == ["agent:1", "agent:1", "agent:2"]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        images().await,
        ["agent:1", "agent:1", "agent:2"],
        "never more than one surge"
    );
    wait_for("all updated", Duration::from_secs(30), || async {
        mark_ready(&c, "default").await;
        let imgs = images().await;
        assert!(imgs.len() <= 3, "at most one extra pod: {imgs:?}");
        assert!(
            imgs.iter().filter(|i| *i == "agent:1").count()
                + imgs.iter().filter(|i| *i == "agent:2").count()
                >= 2
        );
        (imgs == ["agent:2", "agent:2"]).then_some(())
    })
    .await;
}

/// An Indexed job's successPolicy: once the leader index succeeds the job is complete
/// and the other indexes' pods are stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_policy_completes_an_indexed_job_early() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=job"]).await;
    c.create("/apis/batch/v1/namespaces/default/jobs", &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "lead"},
        "spec": {"completions": 3, "parallelism": 3, "completionMode": "Indexed",
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    let leader = wait_for("three indexes running", Duration::from_secs(20), || async {
        let list = c.get("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dlead").await.json();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() < 3 {
            return None;
        }
        items.into_iter().find(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "0")
    })
    .await;
    let name = leader["metadata"]["name"].as_str().unwrap();
    let r = c
        .merge_patch(
            &format!("/api/v1/namespaces/default/pods/{name}/status"),
            &json!({"status": {"phase": "Succeeded"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = wait_for(
        "job complete by success policy",
        Duration::from_secs(20),
        || async {
            let j = c
                .get("/apis/batch/v1/namespaces/default/jobs/lead")
                .await
                .json();
            j["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Complete")
                .then_some(j)
        },
    )
    .await;
    let conds = j["status"]["conditions"].as_array().unwrap();
    for t in ["SuccessCriteriaMet", "Complete"] {
        let cnd = conds.iter().find(|c| c["type"] == t).unwrap();
        assert_eq!(cnd["reason"], "SuccessPolicy");
        assert_eq!(cnd["message"], "Matched rules at index 0");
    }
    assert_eq!(j["status"]["completedIndexes"], "0");
    let list = c
        .get("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dlead")
        .await
        .json();
    let running = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["status"]["phase"] != "Succeeded" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .count();
    assert_eq!(running, 0, "the other indexes were stopped");
}

/// The garbage collector rediscovers the served resources (every 30 s, as upstream):
/// dependents of a custom resource whose definition came after it started are collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_rediscovers_custom_resources() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=garbagecollector"]).await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "owners.gc.example.com"},
        "spec": {"group": "gc.example.com", "scope": "Namespaced",
            "names": {"plural": "owners", "singular": "owner", "kind": "Owner", "listKind": "OwnerList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    create(
        &c,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    let owners = "/apis/gc.example.com/v1/namespaces/default/owners";
    let owner = wait_for("the custom resource served", Duration::from_secs(20), || async {
        let r = c
            .send_json("POST", owners, &json!({"apiVersion": "gc.example.com/v1", "kind": "Owner", "metadata": {"name": "o"}}))
            .await;
        (r.status == 201).then(|| r.json())
    })
    .await;
    create(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "ownerReferences": [{"apiVersion": "gc.example.com/v1",
            "kind": "Owner", "name": "o", "uid": owner["metadata"]["uid"]}]}}),
    )
    .await;
    // Until the collector has found the new kind, its owner is not taken for gone.
    wait_for(
        "the collector to monitor owners",
        Duration::from_secs(75),
        || async {
            kcm.log()
                .lines()
                .any(|l| {
                    l.contains("monitors a new resource") && l.contains("gc.example.com/v1/owners")
                })
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps/dependent")
            .await
            .status,
        200,
        "a dependent of a live owner was collected"
    );
    let r = c
        .request("DELETE", &format!("{owners}/o"), "application/json", "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the dependent collected",
        Duration::from_secs(30),
        || async {
            (c.get("/api/v1/namespaces/default/configmaps/dependent")
                .await
                .status
                == 404)
                .then_some(())
        },
    )
    .await;
}

/// Upstream's "deployment should support rollover": a Deployment adopts an existing
/// ReplicaSet its selector matches, rolls over a stuck rollout to a newer template, and
/// waits `minReadySeconds` for the new pods without ever dropping below
/// `replicas - maxUnavailable` available. The ReplicaSet controller looks at its pods
/// again when they become available (it did not, so a rollout with `minReadySeconds`
/// stalled until a resync), and the Deployment controller adopts and releases sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rollover_adopts_and_waits_min_ready_seconds() {
    let s = TestApiServer::start(None, &["--disable-admission-plugins=ServiceAccount"]).await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &[]).await;
    let ns = "default";
    create(
        &c,
        "/apis/apps/v1/namespaces/default/replicasets",
        &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rollover-controller", "labels": {"name": "rollover-pod", "pod": "httpd"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "rollover-pod", "pod": "httpd"}},
                "template": {"metadata": {"labels": {"name": "rollover-pod", "pod": "httpd"}},
                    "spec": {"containers": [{"name": "httpd", "image": "httpd:2"}]}}}}),
    )
    .await;
    let rs_path = "/apis/apps/v1/namespaces/default/replicasets/rollover-controller";
    let d_path = "/apis/apps/v1/namespaces/default/deployments/rollover";
    wait_for("the ReplicaSet's pod", Duration::from_secs(20), || async {
        mark_ready(&c, ns).await;
        (c.get(rs_path).await.json()["status"]["availableReplicas"] == 1).then_some(())
    })
    .await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "rollover"},
        "spec": {"replicas": 1, "minReadySeconds": 3, "selector": {"matchLabels": {"name": "rollover-pod"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": {"name": "rollover-pod"}},
                "spec": {"containers": [{"name": "redis-slave", "image": "gb-redisslave:nonexistent"}]}}}});
    let d = create(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment,
    )
    .await;
    // Adopted: the existing set is the Deployment's, counted in its status.
    wait_for("adoption", Duration::from_secs(20), || async {
        let rs = c.get(rs_path).await.json();
        let owner = &rs["metadata"]["ownerReferences"][0];
        let st = c.get(d_path).await.json()["status"].clone();
        (owner["uid"] == d["metadata"]["uid"]
            && owner["controller"] == true
            && owner["blockOwnerDeletion"] == true
            && st["replicas"] == 2
            && st["availableReplicas"] == 1)
            .then_some(())
    })
    .await;
    // Roll over the stuck rollout.
    patch(
        &c,
        d_path,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "redis-slave", "image": "agnhost:2.40"}]}}}}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = jiff::Timestamp::now().to_string();
        // New pods become ready now: available only after minReadySeconds.
        let pods = c.get("/api/v1/namespaces/default/pods").await.json();
        for p in pods["items"].as_array().into_iter().flatten() {
            let fresh = p["spec"]["containers"][0]["image"] == "agnhost:2.40";
            let ready = p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready"));
            if fresh && !ready {
                let name = p["metadata"]["name"].as_str().unwrap();
                let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                c.request(
                    "PATCH",
                    &format!("/api/v1/namespaces/default/pods/{name}/status"),
                    "application/merge-patch+json",
                    status.to_string(),
                )
                .await;
            }
        }
        let st = c.get(d_path).await.json()["status"].clone();
        assert!(
            st["availableReplicas"].as_i64().unwrap_or(0) >= 1,
            "availability dropped: {st}"
        );
        if st["replicas"] == 1 && st["updatedReplicas"] == 1 && st["availableReplicas"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollover did not complete: {st}\n{:?}",
            replica_sets(&c, ns, "x").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.get(rs_path).await.json()["spec"]["replicas"], 0);
    // A set whose labels stop matching is released.
    patch(
        &c,
        rs_path,
        json!({"metadata": {"labels": {"name": "elsewhere"}}}),
    )
    .await;
    wait_for("release", Duration::from_secs(20), || async {
        let refs = c.get(rs_path).await.json()["metadata"]["ownerReferences"].clone();
        refs.as_array().is_none_or(|r| r.is_empty()).then_some(())
    })
    .await;
}

/// `--allocate-node-cidrs`: nodes get a `/24` of `--cluster-cidr` (those they hold are
/// kept), a full range is reported as CIDRNotAvailable, and a deleted node's CIDR goes
/// to the next node that needs one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ipam_allocates_pod_cidrs() {
    let s = TestApiServer::start(None, &[]).await;
    let c = s.client.clone();
    let node = |name: &str, cidr: Option<&str>| {
        let mut n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        if let Some(cidr) = cidr {
            n["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
        }
        n
    };
    c.create("/api/v1/nodes", &node("a", Some("10.244.1.0/24")))
        .await;
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=nodeipam",
            "--allocate-node-cidrs=true",
            "--cluster-cidr=10.244.0.0/23",
            "--node-cidr-mask-size=24",
        ],
    )
    .await;
    c.create("/api/v1/nodes", &node("b", None)).await;
    let cidr_of = |name: &'static str| {
        let c = c.clone();
        async move {
            let n = c.get(&format!("/api/v1/nodes/{name}")).await.json();
            n["spec"]["podCIDRs"][0].as_str().map(String::from)
        }
    };
    let b = wait_for("node b's CIDR", Duration::from_secs(20), || cidr_of("b")).await;
    assert_eq!(b, "10.244.0.0/24");
    assert_eq!(
        c.get("/api/v1/nodes/b").await.json()["spec"]["podCIDR"],
        "10.244.0.0/24"
    );
    c.create("/api/v1/nodes", &node("c", None)).await;
    wait_for("CIDRNotAvailable", Duration::from_secs(20), || async {
        let events = c
            .get("/api/v1/events?fieldSelector=reason%3DCIDRNotAvailable")
            .await
            .json();
        events["items"]
            .as_array()?
            .iter()
            .find(|e| e["involvedObject"]["name"] == "c")
            .map(|e| assert_eq!(e["message"], "Node c status is now: CIDRNotAvailable"))
    })
    .await;
    let r = c
        .request("DELETE", "/api/v1/nodes/a", "application/json", "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = wait_for("node c's CIDR", Duration::from_secs(30), || cidr_of("c")).await;
    assert_eq!(got, "10.244.1.0/24");
    // Refused, not ignored: allocation without a range.
    let out = std::process::Command::new(integration_tests::binary("kube-controller-manager"))
        .args([
            "--kubeconfig",
            &s.kubeconfig().display().to_string(),
            "--controllers=nodeipam",
            "--allocate-node-cidrs",
            "--leader-elect=false",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--allocate-node-cidrs requires --cluster-cidr")
    );
}
