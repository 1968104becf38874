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

/// A ValidatingAdmissionPolicy's `auditAnnotations` and its `Audit` validation action
/// reach the request's audit event, as upstream's (`<policy>/<key>` and
/// `validation.policy.admission.k8s.io/validation_failure`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_policies_annotate_audit_events() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, log) = (dir.path().join("policy.yaml"), dir.path().join("audit.log"));
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )
    .unwrap();
    let s = TestApiServer::start(
        None,
        &[
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
        ],
    )
    .await;
    let vap = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "audit-demo"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
            "validations": [{"expression": "!object.metadata.name.startsWith('flagged')", "message": "flagged names are audited"}],
            "auditAnnotations": [{"key": "name", "valueExpression": "object.metadata.name"},
                {"key": "skipped", "valueExpression": "null"}]}});
    let binding = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "audit-demo"}, "spec": {"policyName": "audit-demo", "validationActions": ["Audit"]}});
    s.kubectl_ok(&["create", "-f", "-"], Some(&vap.to_string()));
    s.kubectl_ok(&["create", "-f", "-"], Some(&binding.to_string()));
    let mut n = 0;
    let annotations = wait_for(
        "the policy's audit annotations",
        Duration::from_secs(20),
        || {
            n += 1;
            let name = format!("flagged-{n}");
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            let (c, log) = (s.client.clone(), log.clone());
            async move {
                let r = c
                    .send_json("POST", "/api/v1/namespaces/default/configmaps", &cm)
                    .await;
                assert_eq!(r.status, 201, "Audit does not deny: {}", r.text());
                // A create's objectRef has no name (the URL has none): the annotation names it.
                events(&log)
                    .into_iter()
                    .find(|e| {
                        e["annotations"]["audit-demo/name"] == name.as_str()
                            && e["stage"] == "ResponseComplete"
                    })
                    .map(|e| e["annotations"].clone())
            }
        },
    )
    .await;
    assert!(annotations["audit-demo/skipped"].is_null(), "{annotations}");
    let failure: Value = serde_json::from_str(
        annotations["validation.policy.admission.k8s.io/validation_failure"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        failure,
        json!([{"message": "flagged names are audited", "policy": "audit-demo", "binding": "audit-demo",
            "expressionIndex": 0, "validationActions": ["Audit"]}])
    );
    assert_eq!(annotations["authorization.k8s.io/decision"], "allow");
}
