//! Auditing: `--audit-policy-file` picks each request's level (first matching rule),
//! `--audit-log-path` receives one JSON Event per stage with the bodies the level asks
//! for, watches get ResponseStarted and ResponseComplete, responses carry `Audit-Id`, and
//! the log rotates at `--audit-log-maxsize` keeping `--audit-log-maxbackup` files.

use integration_tests::apiserver::TestApiServer;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources: [{group: \"\", resources: [events]}]\n- level: RequestResponse\n  resources: [{group: \"\", resources: [configmaps]}]\n- level: Metadata\n  omitStages: [RequestReceived]\n";

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect()
}

#[tokio::test]
async fn audit_log_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, log) = (
        dir.path().join("policy.yaml"),
        dir.path().join("audit/audit.log"),
    );
    std::fs::write(&policy, POLICY).unwrap();
    let s = TestApiServer::start(
        None,
        &[
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
            "--audit-log-maxsize=1",
            "--audit-log-maxbackup=1",
        ],
    )
    .await;
    let c = &s.client;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audited"}, "data": {"k": "v"}});
    let r = c
        .send_json("POST", "/api/v1/namespaces/default/configmaps", &cm)
        .await;
    assert_eq!(r.status, 201);
    let audit_id = r.headers["audit-id"].to_str().unwrap().to_string();
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "R", "message": "m"});
    assert_eq!(
        c.send_json("POST", "/api/v1/namespaces/default/events", &ev)
            .await
            .status,
        201
    );
    assert_eq!(
        c.get("/api/v1/namespaces/default/pods/missing")
            .await
            .status,
        404
    );

    let all = events(&log);
    let mine: Vec<&Value> = all
        .iter()
        .filter(|e| e["auditID"] == audit_id.as_str())
        .collect();
    let stages: Vec<&str> = mine.iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["RequestReceived", "ResponseComplete"], "{all:?}");
    let done = mine[1];
    assert_eq!(done["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(done["kind"], "Event");
    assert_eq!(done["level"], "RequestResponse");
    assert_eq!(done["verb"], "create");
    assert_eq!(done["requestURI"], "/api/v1/namespaces/default/configmaps");
    assert_eq!(done["objectRef"]["resource"], "configmaps");
    assert_eq!(done["objectRef"]["namespace"], "default");
    assert_eq!(done["responseStatus"]["code"], 201);
    assert_eq!(done["requestObject"]["data"]["k"], "v");
    assert_eq!(done["responseObject"]["metadata"]["name"], "audited");
    assert_eq!(done["sourceIPs"], json!(["127.0.0.1"]));
    assert!(done["user"]["username"].is_string());
    // Events are not audited; other requests at Metadata, without RequestReceived.
    assert!(!all.iter().any(|e| e["objectRef"]["resource"] == "events"));
    let missing: Vec<&Value> = all
        .iter()
        .filter(|e| e["objectRef"]["name"] == "missing")
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0]["level"], "Metadata");
    assert_eq!(missing[0]["stage"], "ResponseComplete");
    assert_eq!(missing[0]["responseStatus"]["code"], 404);
    assert_eq!(missing[0]["responseStatus"]["reason"], "NotFound");
    assert!(missing[0].get("requestObject").is_none());

    // A watch: ResponseStarted when it begins, ResponseComplete when it ends.
    let r = c
        .get("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1")
        .await;
    assert_eq!(r.status, 200);
    let watch_stages = wait_for("watch audit events", Duration::from_secs(10), || async {
        let stages: Vec<String> = events(&log)
            .iter()
            .filter(|e| e["verb"] == "watch")
            .map(|e| e["stage"].as_str().unwrap().to_string())
            .collect();
        (stages.len() >= 3).then_some(stages)
    })
    .await;
    assert_eq!(
        watch_stages,
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    );

    // Rotation past 1 MB: one backup kept.
    let big = "x".repeat(700 * 1024);
    for name in ["big1", "big2", "big3"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": big}});
        assert_eq!(
            c.send_json("POST", "/api/v1/namespaces/default/configmaps", &cm)
                .await
                .status,
            201
        );
    }
    let files: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("audit-") && f.ends_with(".log")),
        "{files:?}"
    );
}
