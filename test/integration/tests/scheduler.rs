//! Our kube-scheduler against our apiserver with fake Node objects (no kubelet): where
//! the default plugins put pods, upstream's FailedScheduling messages and the
//! PodScheduled condition, scheduling gates, retries when the cluster changes, metrics.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::component::TestScheduler;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

fn node(name: &str, cpu: &str, labels: Value, taints: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {"capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                   "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn cpu(n: &str) -> Value {
    json!([{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": n}}}])
}

async fn create(c: &Client, path: &str, v: &Value) -> Value {
    let r = c.send_json("POST", path, v).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

async fn node_of(c: &Client, name: &str) -> String {
    wait_for(
        &format!("pod {name} bound"),
        Duration::from_secs(20),
        || async {
            let p = c
                .get(&format!("/api/v1/namespaces/default/pods/{name}"))
                .await
                .json();
            p["spec"]["nodeName"].as_str().map(String::from)
        },
    )
    .await
}

/// The note of the newest event of `reason` about pod `name`.
async fn event_note(c: &Client, name: &str, reason: &str) -> String {
    wait_for(&format!("{reason} event for {name}"), Duration::from_secs(20), || async {
        let list = c
            .get(&format!("/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name={name}"))
            .await
            .json();
        list["items"]
            .as_array()?
            .iter()
            .rfind(|e| e["reason"] == reason)
            .map(|e| e["note"].as_str().unwrap_or_default().to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_plugins_place_pods_and_explain_failures() {
    // Without a node lifecycle controller new nodes would keep their not-ready taint.
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    create(
        &c,
        "/api/v1/nodes",
        &node("small", "1", json!({"size": "small"}), json!([])),
    )
    .await;
    create(
        &c,
        "/api/v1/nodes",
        &node("big", "4", json!({"size": "big"}), json!([])),
    )
    .await;
    create(
        &c,
        "/api/v1/nodes",
        &node(
            "gpu",
            "2",
            json!({"size": "gpu"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        ),
    )
    .await;
    let sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    let pods = "/api/v1/namespaces/default/pods";

    // NodeResourcesFit: only "big" has 3 cpus free.
    create(&c, pods, &pod("needs-3", json!({"containers": cpu("3")}))).await;
    assert_eq!(node_of(&c, "needs-3").await, "big");
    assert_eq!(
        event_note(&c, "needs-3", "Scheduled").await,
        "Successfully assigned default/needs-3 to big"
    );

    // Nothing has 2 cpus left but the tainted node: upstream's message, and the
    // PodScheduled condition.
    create(&c, pods, &pod("needs-2", json!({"containers": cpu("2")}))).await;
    let msg = "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. no new claims to deallocate, preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    assert_eq!(event_note(&c, "needs-2", "FailedScheduling").await, msg);
    let cond = wait_for("PodScheduled=False", Duration::from_secs(10), || async {
        let p = c.get(&format!("{pods}/needs-2")).await.json();
        p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .cloned()
    })
    .await;
    assert_eq!(
        (
            cond["status"].as_str(),
            cond["reason"].as_str(),
            cond["message"].as_str()
        ),
        (Some("False"), Some("Unschedulable"), Some(msg))
    );

    // TaintToleration + NodeAffinity: tolerating the taint (an allowed pod update) lets
    // the waiting pod onto the gpu node.
    // (A JSON patch appends: DefaultTolerationSeconds' tolerations must stay.)
    let tolerate = json!([{"op": "add", "path": "/spec/tolerations/-", "value": {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}}]);
    let r = c
        .request(
            "PATCH",
            &format!("{pods}/needs-2"),
            "application/json-patch+json",
            tolerate.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node_of(&c, "needs-2").await, "gpu");

    // nodeSelector: only the small node; NodePorts: the second pod on port 8080 cannot
    // go there. (Filters run in upstream's order: the gpu node fails on its taint first.)
    for name in ["web-1", "web-2"] {
        let spec = json!({"nodeSelector": {"size": "small"}, "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
        create(&c, pods, &pod(name, spec)).await;
    }
    assert_eq!(node_of(&c, "web-1").await, "small");
    assert_eq!(
        event_note(&c, "web-2", "FailedScheduling").await,
        "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint(s). no new claims to deallocate, preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    // Deleting the first frees the port: the waiting pod is retried and placed.
    let r = c
        .request(
            "DELETE",
            &format!("{pods}/web-1?gracePeriodSeconds=0"),
            "application/json",
            "",
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    assert_eq!(node_of(&c, "web-2").await, "small");

    // A node that joins later takes a pod nothing could hold.
    create(&c, pods, &pod("needs-5", json!({"containers": cpu("5")}))).await;
    event_note(&c, "needs-5", "FailedScheduling").await;
    create(
        &c,
        "/api/v1/nodes",
        &node("huge", "8", json!({}), json!([])),
    )
    .await;
    assert_eq!(node_of(&c, "needs-5").await, "huge");

    // Scheduling gates hold a pod until they are removed.
    create(
        &c,
        pods,
        &pod(
            "gated",
            json!({"schedulingGates": [{"name": "example.com/wait"}]}),
        ),
    )
    .await;
    let m = wait_for("gated pod counted", Duration::from_secs(10), || async {
        let m = sched.metrics().await;
        m.contains("scheduler_pending_pods{queue=\"gated\"} 1")
            .then_some(m)
    })
    .await;
    assert!(
        m.contains(
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"}"
        ),
        "{m}"
    );
    let p = c.get(&format!("{pods}/gated")).await.json();
    assert!(p["spec"]["nodeName"].is_null());
    let r = c
        .request(
            "PATCH",
            &format!("{pods}/gated"),
            "application/merge-patch+json",
            json!({"spec": {"schedulingGates": null}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    node_of(&c, "gated").await;

    for path in ["/healthz", "/livez", "/readyz"] {
        let r = Client::new(sched.port).get(path).await;
        assert_eq!((r.status, r.text()), (200, "ok".to_string()), "{path}");
    }
}

/// DefaultPreemption: a higher-priority pod evicts the lower-priority pod a
/// PodDisruptionBudget does not protect, is nominated to the node, and lands there once
/// the victim is gone; a pod with preemptionPolicy Never does not preempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_respects_budgets_and_policy() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    create(
        &c,
        "/api/v1/nodes",
        &node("only", "2", json!({}), json!([])),
    )
    .await;
    let sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    // The secure port delegates to the apiserver: health is open, /metrics needs a user
    // RBAC allows (the admin), an unknown token is refused.
    let port = Client::new(sched.port);
    assert_eq!(port.get("/healthz").await.status, 200);
    let r = port.get("/metrics").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
    );
    assert_eq!(
        port.clone()
            .with_token(Some("nobody"))
            .get("/metrics")
            .await
            .status,
        401
    );
    let m = sched.metrics().await;
    assert!(m.contains("process_resident_memory_bytes"), "{m}");
    let pods = "/api/v1/namespaces/default/pods";
    create(&c, "/apis/scheduling.k8s.io/v1/priorityclasses", &json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000})).await;
    // Without a disruption controller the budget's status allows no disruption.
    create(&c, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guard"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})).await;
    for (name, app) in [("low-guarded", "guarded"), ("low-free", "free")] {
        let mut p = pod(
            name,
            json!({"containers": cpu("1"), "terminationGracePeriodSeconds": 0}),
        );
        p["metadata"]["labels"] = json!({"app": app});
        create(&c, pods, &p).await;
        assert_eq!(node_of(&c, name).await, "only");
    }

    create(&c, "/apis/scheduling.k8s.io/v1/priorityclasses", &json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high-polite"}, "value": 1000, "preemptionPolicy": "Never"})).await;
    let never = pod(
        "polite",
        json!({"containers": cpu("1"), "priorityClassName": "high-polite"}),
    );
    create(&c, pods, &never).await;
    assert_eq!(
        event_note(&c, "polite", "FailedScheduling").await,
        "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."
    );
    let r = c
        .request("DELETE", &format!("{pods}/polite"), "application/json", "")
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());

    let vip = create(
        &c,
        pods,
        &pod(
            "vip",
            json!({"containers": cpu("1"), "priorityClassName": "high"}),
        ),
    )
    .await;
    let uid = vip["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(node_of(&c, "vip").await, "only");
    assert_eq!(
        event_note(&c, "low-free", "Preempted").await,
        format!("Preempted by pod {uid} on node only")
    );
    assert_eq!(c.get(&format!("{pods}/low-free")).await.status, 404);
    let guarded = c.get(&format!("{pods}/low-guarded")).await.json();
    assert!(guarded["metadata"]["deletionTimestamp"].is_null());
    let vip = c.get(&format!("{pods}/vip")).await.json();
    assert_eq!(vip["status"]["nominatedNodeName"], "only");
}

/// PodTopologySpread and InterPodAffinity: DoNotSchedule spreading across zones keeps
/// the skew within maxSkew; required anti-affinity keeps a group's pods on separate
/// hosts; required affinity follows the pod it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_and_pod_affinity() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        let labels = json!({"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name});
        create(&c, "/api/v1/nodes", &node(name, "8", labels, json!([]))).await;
    }
    let _sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    let pods = "/api/v1/namespaces/default/pods";

    // Four pods spread over two zones with maxSkew 1: two in each.
    let mut zones = std::collections::HashMap::new();
    for i in 0..4 {
        let mut p = pod(
            &format!("spread-{i}"),
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]}),
        );
        p["metadata"]["labels"] = json!({"app": "spread"});
        create(&c, pods, &p).await;
        let n = node_of(&c, &format!("spread-{i}")).await;
        *zones.entry(if n == "b1" { "b" } else { "a" }).or_insert(0) += 1;
    }
    assert_eq!((zones["a"], zones["b"]), (2, 2), "{zones:?}");

    // Required anti-affinity on the hostname: three hosts, the fourth pod cannot fit.
    for i in 0..4 {
        let mut p = pod(
            &format!("solo-{i}"),
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "solo"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
        );
        p["metadata"]["labels"] = json!({"app": "solo"});
        create(&c, pods, &p).await;
    }
    let mut hosts = Vec::new();
    for i in 0..3 {
        hosts.push(node_of(&c, &format!("solo-{i}")).await);
    }
    hosts.sort();
    assert_eq!(hosts, ["a1", "a2", "b1"]);
    assert_eq!(
        event_note(&c, "solo-3", "FailedScheduling").await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. no new claims to deallocate, preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );

    // Required affinity: the follower goes to the zone of the pod it names.
    let mut leader = pod(
        "leader",
        json!({"nodeSelector": {"kubernetes.io/hostname": "b1"}}),
    );
    leader["metadata"]["labels"] = json!({"role": "leader"});
    create(&c, pods, &leader).await;
    assert_eq!(node_of(&c, "leader").await, "b1");
    create(&c, pods, &pod("follower", json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"role": "leader"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}}))).await;
    assert_eq!(node_of(&c, "follower").await, "b1");
    create(&c, pods, &pod("lost", json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"role": "nobody"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}}))).await;
    assert_eq!(
        event_note(&c, "lost", "FailedScheduling").await,
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules. no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

/// Two schedulers with leader election on `kube-system/kube-scheduler`: only the leader
/// schedules; when it is killed the standby takes the lease and schedules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    create(&c, "/api/v1/nodes", &node("n", "8", json!({}), json!([]))).await;
    let fast = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut first = TestScheduler::start(&s.kubeconfig(), &fast).await;
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler";
    let holder = |c: Client| async move {
        let r = c.get(lease_path).await;
        (r.status == 200).then(|| {
            r.json()["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    };
    let leader = wait_for("a lease holder", Duration::from_secs(20), || {
        holder(c.clone())
    })
    .await;
    let second = TestScheduler::start(&s.kubeconfig(), &fast).await;
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &pod("before", json!({})),
    )
    .await;
    node_of(&c, "before").await;
    let lease = c.get(lease_path).await.json();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3);
    assert_eq!(holder(c.clone()).await.unwrap(), leader);

    first.kill();
    let next = wait_for("another lease holder", Duration::from_secs(30), || async {
        holder(c.clone()).await.filter(|h| *h != leader)
    })
    .await;
    assert_ne!(next, leader);
    let lease = c.get(lease_path).await.json();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    create(
        &c,
        "/api/v1/namespaces/default/pods",
        &pod("after", json!({})),
    )
    .await;
    node_of(&c, "after").await;
    drop(second);
}

/// Volume plugins: a WaitForFirstConsumer claim goes where a matching local volume is
/// (the binding cycle sets the volume's claimRef and waits for the claim to be bound,
/// here by the test acting as the PV controller); missing claims and unbound Immediate
/// claims are reported as upstream does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_binding_follows_local_volumes() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,DefaultStorageClass"],
    )
    .await;
    let c = s.client.clone();
    for name in ["a", "b"] {
        create(
            &c,
            "/api/v1/nodes",
            &node(
                name,
                "4",
                json!({"kubernetes.io/hostname": name}),
                json!([]),
            ),
        )
        .await;
    }
    let classes = "/apis/storage.k8s.io/v1/storageclasses";
    create(&c, classes, &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})).await;
    create(&c, classes, &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "example.com/csi", "volumeBindingMode": "Immediate"})).await;
    create(&c, "/api/v1/persistentvolumes", &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-on-b"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local", "local": {"path": "/mnt/disk"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]}}}})).await;
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    let claim = |name: &str, class: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class, "resources": {"requests": {"storage": "500Mi"}}}})
    };
    create(&c, claims, &claim("data", "local")).await;
    create(&c, claims, &claim("later", "fast")).await;
    let _sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    let pods = "/api/v1/namespaces/default/pods";
    let with_claim = |name: &str, claim: &str| {
        pod(
            name,
            json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    };

    create(&c, pods, &with_claim("db", "data")).await;
    // The binding cycle claims the volume; acting as the PV controller, bind the claim.
    let pv = wait_for("claimRef on pv-on-b", Duration::from_secs(20), || async {
        let pv = c.get("/api/v1/persistentvolumes/pv-on-b").await.json();
        (pv["spec"]["claimRef"]["name"] == "data").then_some(pv)
    })
    .await;
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "default");
    let r = c
        .request(
            "PATCH",
            &format!("{claims}/data/status"),
            "application/merge-patch+json",
            json!({"status": {"phase": "Bound"}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .request(
            "PATCH",
            &format!("{claims}/data"),
            "application/merge-patch+json",
            json!({"spec": {"volumeName": "pv-on-b"}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node_of(&c, "db").await, "b");

    create(&c, pods, &with_claim("orphan", "missing")).await;
    assert_eq!(
        event_note(&c, "orphan", "FailedScheduling").await,
        "0/2 nodes are available: persistentvolumeclaim \"missing\" not found. no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    create(&c, pods, &with_claim("eager", "later")).await;
    assert_eq!(
        event_note(&c, "eager", "FailedScheduling").await,
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

/// PodTopologySpread's system defaults: pods without constraints of their own spread
/// over the hosts by the selector of the Service selecting them, even when resource
/// scores alone would pile them onto the largest node (as unselected pods do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_spreading_follows_services() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    for (name, cpus) in [("huge", "64"), ("s1", "4"), ("s2", "4")] {
        create(
            &c,
            "/api/v1/nodes",
            &node(
                name,
                cpus,
                json!({"kubernetes.io/hostname": name}),
                json!([]),
            ),
        )
        .await;
    }
    create(
        &c,
        "/api/v1/namespaces/default/services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    let _sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    let pods = "/api/v1/namespaces/default/pods";
    let labelled = |name: &str, app: &str| {
        let mut p = pod(name, json!({"containers": cpu("100m")}));
        p["metadata"]["labels"] = json!({"app": app});
        p
    };
    let mut unselected = Vec::new();
    for i in 0..2 {
        create(&c, pods, &labelled(&format!("other-{i}"), "other")).await;
        unselected.push(node_of(&c, &format!("other-{i}")).await);
    }
    assert_eq!(unselected, ["huge", "huge"]);
    let mut spread = Vec::new();
    for i in 0..3 {
        create(&c, pods, &labelled(&format!("web-{i}"), "web")).await;
        spread.push(node_of(&c, &format!("web-{i}")).await);
    }
    spread.sort();
    assert_eq!(spread, ["huge", "s1", "s2"]);
}

/// `--config`: a second profile with MostAllocated scoring packs pods onto the busier
/// node while the default profile spreads them; bad configurations stop the binary with
/// a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_profiles_and_errors() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    for name in ["n1", "n2"] {
        create(&c, "/api/v1/nodes", &node(name, "4", json!({}), json!([]))).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let kc = s.kubeconfig();
    let good = write(
        "good.yaml",
        &format!(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: {}\nleaderElection:\n  leaderElect: false\nprofiles:\n- schedulerName: default-scheduler\n- schedulerName: packer\n  plugins:\n    score:\n      disabled: [{{name: \"*\"}}]\n      enabled: [{{name: NodeResourcesFit, weight: 1}}]\n  pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: MostAllocated\n",
            kc.display()
        ),
    );
    let _sched = TestScheduler::start(&kc, &[&format!("--config={}", good.display())]).await;
    let pods = "/api/v1/namespaces/default/pods";
    create(
        &c,
        pods,
        &pod("first", json!({"containers": cpu("2"), "nodeName": null})),
    )
    .await;
    let busy = node_of(&c, "first").await;
    for i in 0..2 {
        create(
            &c,
            pods,
            &pod(
                &format!("packed-{i}"),
                json!({"containers": cpu("500m"), "schedulerName": "packer"}),
            ),
        )
        .await;
        assert_eq!(node_of(&c, &format!("packed-{i}")).await, busy);
    }
    create(&c, pods, &pod("spread", json!({"containers": cpu("500m")}))).await;
    assert_ne!(node_of(&c, "spread").await, busy);

    for (name, body, want) in [
        (
            "kind.yaml",
            "apiVersion: kubescheduler.config.k8s.io/v1beta9\nkind: KubeSchedulerConfiguration\n",
            "no kind \"KubeSchedulerConfiguration\" is registered for version \"kubescheduler.config.k8s.io/v1beta9\"",
        ),
        (
            "plugin.yaml",
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nleaderElection: {leaderElect: false}\nprofiles:\n- plugins:\n    filter:\n      enabled: [{name: Nope}]\n",
            "plugin \"Nope\" does not exist",
        ),
        (
            "range.yaml",
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 120\n",
            "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]",
        ),
    ] {
        let path = write(name, body);
        let out = std::process::Command::new(integration_tests::binary("kube-scheduler"))
            .arg(format!("--config={}", path.display()))
            .arg(format!("--kubeconfig={}", kc.display()))
            .arg("--secure-port=0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// Replicas without resource requests spread as upstream spreads them: the system-default
/// topology spread over their ReplicaSet, non-zero default requests for scoring, ties
/// broken at random. Pods arrive in a burst from the controller-manager, as in a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_less_replicas_spread_over_equal_nodes() {
    let s = TestApiServer::start(
        None,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await;
    let c = s.client.clone();
    for name in ["n1", "n2"] {
        let labels = json!({"kubernetes.io/hostname": name});
        create(&c, "/api/v1/nodes", &node(name, "4", labels, json!([]))).await;
    }
    let _sched = TestScheduler::start(&s.kubeconfig(), &[]).await;
    let _kcm = integration_tests::component::TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--use-service-account-credentials=false",
            "--controllers=deployment,replicaset",
        ],
    )
    .await;
    let deployment = |name: &str, replicas: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}})
    };
    let placement = |app: &'static str, want: usize| {
        let c = c.clone();
        async move {
            wait_for(
                &format!("{want} {app} pods bound"),
                Duration::from_secs(60),
                || async {
                    let list = c
                        .get(&format!(
                            "/api/v1/namespaces/default/pods?labelSelector=app%3D{app}"
                        ))
                        .await
                        .json();
                    let nodes: Vec<String> = list["items"]
                        .as_array()?
                        .iter()
                        .filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from))
                        .collect();
                    (nodes.len() == want).then(|| {
                        let on = |n: &str| nodes.iter().filter(|x| *x == n).count();
                        (on("n1"), on("n2"))
                    })
                },
            )
            .await
        }
    };
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    create(&c, deps, &deployment("four", 4)).await;
    assert_eq!(placement("four", 4).await, (2, 2));
    // Two Deployments of 6 at once: each spreads 3 + 3.
    create(&c, deps, &deployment("alpha", 6)).await;
    create(&c, deps, &deployment("beta", 6)).await;
    assert_eq!(placement("alpha", 6).await, (3, 3));
    assert_eq!(placement("beta", 6).await, (3, 3));
}
