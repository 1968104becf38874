//! API Priority and Fairness: upstream's bootstrap FlowSchemas and priority levels, the
//! classification headers, a Reject level refusing with 429 while its seat is taken (other
//! levels unaffected), a Queue level holding a request until a seat frees and refusing
//! once its queue is full, and the Dangling condition of a schema without its level.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

/// A read that waits 3 s for a revision the store has not reached, holding its seat.
const BLOCKING_LIST: &str = "/api/v1/namespaces/default/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan";

fn level(name: &str, response: Value) -> Value {
    json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1, "limitResponse": response}}})
}

fn schema(name: &str, level: &str, user: &str) -> Value {
    json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 50,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{"subjects": [{"kind": "User", "user": {"name": user}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}]}]}})
}

async fn metric(admin: &Client, needle: &str) -> bool {
    admin.get("/metrics").await.text().contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_levels_queue_and_reject() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "admin-token,admin,0,system:masters\nslow-token,slow,1\npatient-token,patient,2\nother-token,other,3\n",
    )
    .unwrap();
    // Three seats in all, split by shares: each test level gets one.
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--max-requests-inflight=2",
            "--max-mutating-requests-inflight=1",
        ],
        Some("admin-token"),
    )
    .await;
    let admin = s.client.clone();
    let as_user = |t: &str| Client::new(s.port).with_token(Some(t));

    // Upstream's bootstrap configuration.
    let out = s.kubectl_ok(&["get", "flowschemas"], None);
    for fs in [
        "exempt",
        "probes",
        "system-leader-election",
        "system-nodes",
        "kube-controller-manager",
        "service-accounts",
        "global-default",
        "catch-all",
    ] {
        assert!(out.contains(fs), "{fs} missing:\n{out}");
    }
    let out = s.kubectl_ok(&["get", "prioritylevelconfigurations"], None);
    for pl in [
        "exempt",
        "system",
        "node-high",
        "leader-election",
        "workload-high",
        "workload-low",
        "global-default",
        "catch-all",
    ] {
        assert!(out.contains(pl), "{pl} missing:\n{out}");
    }

    let create = |v: Value, path: &'static str| {
        let admin = admin.clone();
        async move {
            let r = admin.send_json("POST", path, &v).await;
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()
        }
    };
    const PLS: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations";
    const FSS: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas";
    create(level("tiny", json!({"type": "Reject"})), PLS).await;
    let tiny = create(schema("slow-users", "tiny", "slow"), FSS).await;
    create(level("queued", json!({"type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 1}})), PLS).await;
    create(schema("patient-users", "queued", "patient"), FSS).await;

    // Responses name the schema that classified them once the configuration is loaded.
    let slow = as_user("slow-token");
    wait_for(
        "the slow-users schema in force",
        Duration::from_secs(10),
        || async {
            let r = slow.get("/api/v1/namespaces").await;
            (r.headers
                .get("x-kubernetes-pf-flowschema-uid")
                .map(|v| v.to_str().unwrap().to_string())
                == tiny["metadata"]["uid"].as_str().map(String::from))
            .then_some(())
        },
    )
    .await;
    let r = admin.get("/api/v1/namespaces").await;
    let exempt = admin
        .get("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/exempt")
        .await
        .json();
    assert_eq!(
        r.headers["x-kubernetes-pf-flowschema-uid"],
        exempt["metadata"]["uid"].as_str().unwrap()
    );

    // Reject: while the one seat is taken, the next request is refused at once. The seat
    // is held for the freshness wait (3 s). On a loaded machine a round can miss (the
    // blocker starts late, or a probe takes the seat first); such a round is tried again.
    let mut refused = None;
    let executing = r#"apiserver_flowcontrol_current_executing_requests{flow_schema="slow-users",priority_level="tiny"} 1"#;
    for _ in 0..3 {
        let blocker = {
            let slow = slow.clone();
            tokio::spawn(async move { slow.get(BLOCKING_LIST).await.status })
        };
        while !blocker.is_finished() && !metric(&admin, executing).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !blocker.is_finished() {
            let r = slow.get("/api/v1/namespaces").await;
            if r.status == 429 {
                refused = Some(r);
            }
        }
        let status = blocker.await.unwrap();
        if refused.is_some() {
            assert_eq!(status, 504);
            break;
        }
    }
    let refused = refused.expect("a 429 for the slow user while its one seat is taken");
    assert_eq!(refused.json()["reason"], "TooManyRequests");
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(
        refused
            .headers
            .contains_key("x-kubernetes-pf-prioritylevel-uid")
    );
    // Other users have seats of their own.
    assert_eq!(
        as_user("other-token")
            .get("/api/v1/namespaces")
            .await
            .status,
        200
    );
    assert_eq!(slow.get("/api/v1/namespaces").await.status, 200);

    // Queue: the next request waits for the seat; one more does not fit the queue.
    let patient = as_user("patient-token");
    let blocker = {
        let patient = patient.clone();
        tokio::spawn(async move { patient.get(BLOCKING_LIST).await.status })
    };
    let labels = r#"{flow_schema="patient-users",priority_level="queued"}"#;
    wait_for("the blocker executing", Duration::from_secs(3), || async {
        metric(
            &admin,
            &format!("apiserver_flowcontrol_current_executing_requests{labels} 1"),
        )
        .await
        .then_some(())
    })
    .await;
    let queued = {
        let patient = patient.clone();
        tokio::spawn(async move { patient.get("/api/v1/namespaces").await.status })
    };
    wait_for("a queued request", Duration::from_secs(3), || async {
        metric(
            &admin,
            &format!("apiserver_flowcontrol_current_inqueue_requests{labels} 1"),
        )
        .await
        .then_some(())
    })
    .await;
    let r = patient.get("/api/v1/namespaces").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(blocker.await.unwrap(), 504);
    assert_eq!(queued.await.unwrap(), 200);
    let m = admin.get("/metrics").await.text();
    for needle in [
        r#"apiserver_flowcontrol_rejected_requests_total{flow_schema="patient-users",priority_level="queued",reason="queue-full"} 1"#.to_string(),
        r#"apiserver_flowcontrol_rejected_requests_total{flow_schema="slow-users",priority_level="tiny",reason="concurrency-limit"}"#.to_string(),
        format!("apiserver_flowcontrol_dispatched_requests_total{labels} 2"),
        r#"apiserver_flowcontrol_nominal_limit_seats{priority_level="queued"} 1"#.to_string(),
        r#"apiserver_flowcontrol_request_wait_duration_seconds_count{flow_schema="patient-users",priority_level="queued",execute="true"} 2"#.to_string(),
    ] {
        assert!(m.contains(&needle), "metrics lack {needle}");
    }

    // A schema whose level does not exist is Dangling (and classifies nothing).
    create(schema("orphan", "nope", "slow"), FSS).await;
    let cond = wait_for(
        "the Dangling condition",
        Duration::from_secs(10),
        || async {
            let fs = admin.get(&format!("{FSS}/orphan")).await.json();
            fs["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Dangling").cloned())
        },
    )
    .await;
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "NotFound");
    assert_eq!(
        cond["message"],
        r#"This FlowSchema references the PriorityLevelConfiguration object named "nope" but there is no such object"#
    );
    let fs = admin.get(&format!("{FSS}/global-default")).await.json();
    let cond = &fs["status"]["conditions"][0];
    assert_eq!(
        (cond["type"].as_str(), cond["status"].as_str()),
        (Some("Dangling"), Some("False"))
    );
}
