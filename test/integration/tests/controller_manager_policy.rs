//! Our kube-controller-manager's policy controllers against our apiserver: quota usage
//! recounted and given back, PodDisruptionBudget status guarding evictions.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::component::TestControllerManager;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

const QUOTA: &str = "/api/v1/namespaces/default/resourcequotas/compute";

/// Waits until the quota's `status.used` reads `want` (every key listed).
async fn wait_used(c: &Client, want: Value) -> Value {
    wait_for(
        &format!("quota used {want}"),
        Duration::from_secs(20),
        || async {
            let q = c.get(QUOTA).await.json();
            let used = &q["status"]["used"];
            want.as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &used[k] == v)
                .then_some(q)
        },
    )
    .await
}

fn pod(name: &str, cpu: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_quota_usage_is_counted_and_given_back() {
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
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=resourcequota"]).await;
    let pods = "/api/v1/namespaces/default/pods";
    c.create(pods, &pod("before", "250m")).await;
    c.create("/api/v1/namespaces/default/resourcequotas", &json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "spec": {"hard": {"pods": "3", "requests.cpu": "1", "services": "5", "count/deployments.apps": "2"}}})).await;
    // The first count includes what existed before the quota, and a typed-less resource.
    let q = wait_used(&c, json!({"pods": "1", "requests.cpu": "250m", "services": "1", "count/deployments.apps": "0"})).await;
    assert_eq!(q["status"]["hard"], q["spec"]["hard"]);

    c.create(pods, &pod("a", "500m")).await;
    wait_used(&c, json!({"pods": "2", "requests.cpu": "750m"})).await;
    let r = c.send_json("POST", pods, &pod("b", "500m")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "pods \"b\" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=750m, limited: requests.cpu=1"
    );

    // Deleting a pod gives its share back, so the same pod now fits.
    let r = c
        .send_json(
            "DELETE",
            &format!("{pods}/a"),
            &json!({"gracePeriodSeconds": 0}),
        )
        .await;
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    wait_used(&c, json!({"pods": "1", "requests.cpu": "250m"})).await;
    c.create(pods, &pod("b", "500m")).await;

    // A pod that finished stops charging compute.
    let r = c
        .merge_patch(
            &format!("{pods}/before/status"),
            &json!({"status": {"phase": "Succeeded"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_used(&c, json!({"pods": "1", "requests.cpu": "500m"})).await;

    c.create("/apis/apps/v1/namespaces/default/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    // Deployments are counted at admission; the recount keeps the figure.
    wait_used(&c, json!({"count/deployments.apps": "1"})).await;
    // [sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the
    // life of a replica set: deleting an object counted by `count/` gives its share back
    // at once, not at the next full resync.
    let r = c
        .request(
            "DELETE",
            "/apis/apps/v1/namespaces/default/deployments/d",
            "",
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_used(&c, json!({"count/deployments.apps": "0"})).await;

    // A resource dropped from spec.hard leaves status as well.
    let r = c
        .merge_patch(QUOTA, &json!({"spec": {"hard": {"services": null}}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "services dropped from status",
        Duration::from_secs(20),
        || async {
            let q = c.get(QUOTA).await.json();
            (q["status"]["hard"]["services"].is_null() && q["status"]["used"]["services"].is_null())
                .then_some(())
        },
    )
    .await;
}

/// Marks every pending pod with `app=db` Running and Ready, as a kubelet would.
async fn run_pods(c: &Client) -> Vec<String> {
    let list = c
        .get("/api/v1/namespaces/default/pods?labelSelector=app%3Ddb")
        .await
        .json();
    let mut names = Vec::new();
    for p in list["items"].as_array().into_iter().flatten() {
        if !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        if p["status"]["phase"] != "Running" {
            let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
            let r = c
                .merge_patch(
                    &format!("/api/v1/namespaces/default/pods/{name}/status"),
                    &status,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        names.push(name);
    }
    names
}

async fn wait_budget(c: &Client, name: &str, want: Value) -> Value {
    let path = format!("/apis/policy/v1/namespaces/default/poddisruptionbudgets/{name}");
    wait_for(
        &format!("budget {name} status {want}"),
        Duration::from_secs(20),
        || async {
            run_pods(c).await;
            let b = c.get(&path).await.json();
            want.as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &b["status"][k] == v)
                .then_some(b)
        },
    )
    .await
}

async fn evict(c: &Client, pod: &str) -> integration_tests::client::Reply {
    c.send_json(
        "POST",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disruption_budgets_guard_evictions() {
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
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=disruption,replicaset"])
            .await;
    c.create("/apis/apps/v1/namespaces/default/replicasets", &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    let budgets = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    c.create(budgets, &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "min2"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})).await;
    // A relative budget takes its expected count from the ReplicaSet's scale.
    c.create(budgets, &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "half", "namespace": "default"},
        "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "nothing"}}}})).await;
    let b = wait_budget(&c, "min2", json!({"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1})).await;
    assert_eq!(b["status"]["conditions"][0]["type"], "DisruptionAllowed");
    assert_eq!(b["status"]["conditions"][0]["status"], "True");
    assert_eq!(b["status"]["conditions"][0]["reason"], "SufficientPods");
    assert_eq!(
        b["status"]["observedGeneration"],
        b["metadata"]["generation"]
    );
    wait_budget(
        &c,
        "half",
        json!({"expectedPods": 0, "disruptionsAllowed": 0}),
    )
    .await;

    // One eviction is affordable; the next one is not until a replacement is ready.
    let pods = run_pods(&c).await;
    let r = evict(&c, &pods[0]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = evict(&c, &pods[1]).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let b = c.get(&format!("{budgets}/min2")).await.json();
    assert_eq!(b["status"]["disruptionsAllowed"], 0);
    // The replacement pod, once ready, restores the allowance.
    wait_budget(
        &c,
        "min2",
        json!({"currentHealthy": 3, "disruptionsAllowed": 1}),
    )
    .await;
    let r = evict(&c, &pods[1]).await;
    assert_eq!(r.status, 201, "{}", r.text());

    // Against a scale of 3, maxUnavailable 50% rounds up to 2: one healthy pod is enough.
    let r = c
        .merge_patch(
            &format!("{budgets}/half"),
            &json!({"spec": {"selector": {"matchLabels": {"app": "db"}}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_budget(&c, "half", json!({"expectedPods": 3, "desiredHealthy": 1, "currentHealthy": 3, "disruptionsAllowed": 2})).await;
}

/// Messages of the core/v1 events with `reason` about the named object.
async fn event_messages(c: &Client, name: &str, reason: &str) -> Vec<String> {
    let list = c
        .get(&format!(
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D{name}"
        ))
        .await
        .json();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == reason)
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn wait_event(c: &Client, name: &str, reason: &str) -> Vec<String> {
    wait_for(
        &format!("{reason} event"),
        Duration::from_secs(20),
        || async {
            let m = event_messages(c, name, reason).await;
            (!m.is_empty()).then_some(m)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjobs_run_on_schedule_with_concurrency_policies() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=cronjob"]).await;
    let cj_path = "/apis/batch/v1/namespaces/default/cronjobs/tick";
    // Hourly at the minute of three minutes ago: one missed activation to run now, and
    // none due again while the test runs.
    let due =
        jiff::Timestamp::from_second((jiff::Timestamp::now().as_second() - 180) / 60 * 60).unwrap();
    let schedule = format!("{} * * * *", due.to_zoned(jiff::tz::TimeZone::UTC).minute());
    let cj = c.create("/apis/batch/v1/namespaces/default/cronjobs", &json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {"schedule": schedule, "timeZone": "UTC", "suspend": true, "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 0,
            "jobTemplate": {"metadata": {"labels": {"from": "tick"}}, "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}})).await;
    let r = c.send_json("POST", "/apis/batch/v1/namespaces/default/cronjobs", &json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "bad"}, "spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}})).await;
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("end of range (61) above maximum (59): 61"),
        "{}",
        r.text()
    );

    // A job the controller did not create, but owned by the CronJob, is adopted as active.
    let owner = json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": cj["metadata"]["uid"], "controller": true}]);
    c.create("/apis/batch/v1/namespaces/default/jobs", &json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "manual", "ownerReferences": owner},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).await;
    wait_for("manual job active", Duration::from_secs(20), || async {
        let cj = c.get(cj_path).await.json();
        (cj["status"]["active"][0]["name"] == "manual").then_some(())
    })
    .await;
    wait_event(&c, "tick", "UnexpectedJob").await;

    // An activation was missed while suspended; Forbid holds the next one back.
    let five_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5);
    let r = c.merge_patch(&format!("{cj_path}/status"), &json!({"status": {"lastScheduleTime": five_ago.round(jiff::Unit::Second).unwrap().to_string()}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .merge_patch(cj_path, &json!({"spec": {"suspend": false}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = wait_event(&c, "tick", "JobAlreadyActive").await;
    assert_eq!(
        m[0],
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );

    // Replace deletes the running job and starts the latest activation's.
    let r = c
        .merge_patch(cj_path, &json!({"spec": {"concurrencyPolicy": "Replace"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cj = wait_for(
        "replacement job active",
        Duration::from_secs(20),
        || async {
            let cj = c.get(cj_path).await.json();
            let name = cj["status"]["active"][0]["name"].as_str()?.to_string();
            (name != "manual").then_some(cj)
        },
    )
    .await;
    assert_eq!(
        c.get("/apis/batch/v1/namespaces/default/jobs/manual")
            .await
            .status,
        404
    );
    let last: jiff::Timestamp = cj["status"]["lastScheduleTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last, due);
    let name = format!("tick-{}", last.as_second() / 60);
    assert_eq!(cj["status"]["active"][0]["name"], name.as_str());
    let job = c
        .get(&format!("/apis/batch/v1/namespaces/default/jobs/{name}"))
        .await
        .json();
    assert_eq!(job["metadata"]["labels"]["from"], "tick");
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        last.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    let created = wait_event(&c, "tick", "SuccessfulCreate").await;
    assert_eq!(created, [format!("Created job {name}")]);
    assert_eq!(
        wait_event(&c, "tick", "SuccessfulDelete").await,
        ["Deleted job manual"]
    );

    // A completed job leaves the active list, sets lastSuccessfulTime, and with a
    // history limit of 0 is deleted.
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    let done = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now}]}});
    let r = c
        .merge_patch(
            &format!("/apis/batch/v1/namespaces/default/jobs/{name}/status"),
            &done,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "job completed and cleaned up",
        Duration::from_secs(20),
        || async {
            let cj = c.get(cj_path).await.json();
            let gone = c
                .get(&format!("/apis/batch/v1/namespaces/default/jobs/{name}"))
                .await
                .status
                == 404;
            (cj["status"]["active"].is_null()
                && cj["status"]["lastSuccessfulTime"] == json!(now)
                && gone)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        event_messages(&c, "tick", "SawCompletedJob").await,
        [format!("Saw completed job: {name}, condition: Complete")]
    );
}

/// Submits a CSR for a new key with `subject` (and `san`, if any); returns its name.
async fn submit_csr(
    c: &Client,
    dir: &std::path::Path,
    name: &str,
    subject: &str,
    san: Option<&str>,
    spec: Value,
) {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        "/dev/null",
    ];
    let ext;
    if let Some(san) = san {
        ext = format!("subjectAltName={san}");
        args.extend(["-addext", &ext]);
    }
    let pem = integration_tests::openssl(dir, &args);
    let mut spec = spec;
    spec["request"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        pem
    ));
    c.create(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        &json!({"apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest", "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

async fn approve(c: &Client, name: &str) {
    let path = format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}");
    let mut csr = c.get(&path).await.json();
    csr["status"]["conditions"] = json!([{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "approved by the test"}]);
    let r = c.send_json("PUT", &format!("{path}/approval"), &csr).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Waits for the CSR to satisfy `f`; returns it.
async fn wait_csr(c: &Client, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}");
    wait_for(what, Duration::from_secs(20), || async {
        let csr = c.get(&path).await.json();
        f(&csr).then_some(csr)
    })
    .await
}

fn issued_pem(csr: &Value) -> String {
    let b64 = csr["status"]["certificate"].as_str().unwrap();
    String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_signing_requests_are_approved_and_signed() {
    let s = TestApiServer::start(None, &["--authorization-mode=Node,RBAC"]).await;
    let c = s.client.clone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An RSA CA in the traditional PKCS#1 form, as kubeadm writes its CA key.
    integration_tests::openssl(d, &["genrsa", "-traditional", "-out", "ca.key", "2048"]);
    integration_tests::openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-days",
            "30",
            "-subj",
            "/CN=cluster-ca",
            "-out",
            "ca.crt",
        ],
    );
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=csrapproving,csrsigning,csrcleaner",
            &format!("--cluster-signing-cert-file={}", d.join("ca.crt").display()),
            &format!("--cluster-signing-key-file={}", d.join("ca.key").display()),
        ],
    )
    .await;

    // A node's client certificate request is approved after a SubjectAccessReview and signed.
    submit_csr(&c, d, "node-client", "/O=system:nodes/CN=system:node:n1", None,
        json!({"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "usages": ["digital signature", "client auth"]})).await;
    let csr = wait_csr(&c, "node-client", "node client certificate issued", |c| {
        c["status"]["certificate"].is_string()
    })
    .await;
    // The requester is the creator, whatever the body said.
    assert_eq!(csr["spec"]["username"], "test-admin");
    assert!(
        csr["spec"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:masters"))
    );
    let approved = &csr["status"]["conditions"][0];
    assert_eq!(approved["type"], "Approved");
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(
        approved["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    std::fs::write(d.join("node.crt"), issued_pem(&csr)).unwrap();
    let verified = integration_tests::openssl(d, &["verify", "-CAfile", "ca.crt", "node.crt"]);
    assert!(verified.contains("node.crt: OK"), "{verified}");
    let text = integration_tests::openssl(
        d,
        &[
            "x509",
            "-in",
            "node.crt",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage",
        ],
    );
    assert!(
        text.contains("O=system:nodes, CN=system:node:n1")
            || text.contains("O = system:nodes, CN = system:node:n1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // Serving certificates are not auto-approved; once approved, one without names is refused.
    submit_csr(&c, d, "serving", "/O=system:nodes/CN=system:node:n1", None,
        json!({"signerName": "kubernetes.io/kubelet-serving", "usages": ["digital signature", "server auth"]})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = c
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests/serving")
        .await
        .json();
    assert!(pending["status"]["conditions"].is_null(), "{pending}");
    approve(&c, "serving").await;
    let csr = wait_csr(&c, "serving", "serving request failed", |c| {
        c["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["type"] == "Failed"))
    })
    .await;
    let failed = csr["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "Failed")
        .unwrap()
        .clone();
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(failed["message"], "DNS or IP subjectAltName is required");
    assert!(csr["status"]["certificate"].is_null());

    // A user's client certificate, approved by an administrator, lives as long as asked.
    submit_csr(&c, d, "alice", "/O=devs/CN=alice", None,
        json!({"signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"], "expirationSeconds": 3600})).await;
    approve(&c, "alice").await;
    let csr = wait_csr(&c, "alice", "alice's certificate issued", |c| {
        c["status"]["certificate"].is_string()
    })
    .await;
    std::fs::write(d.join("alice.crt"), issued_pem(&csr)).unwrap();
    integration_tests::openssl(
        d,
        &["x509", "-in", "alice.crt", "-noout", "-checkend", "3500"],
    );
    let out = std::process::Command::new("openssl")
        .current_dir(d)
        .args(["x509", "-in", "alice.crt", "-noout", "-checkend", "3700"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the certificate should expire within 3700 s"
    );
}

fn b64(s: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s)
}

fn bootstrap_token(id: &str, expires: jiff::Timestamp) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "data": {"token-id": b64(id), "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-signing": b64("true"), "usage-bootstrap-authentication": b64("true"),
            "expiration": b64(&expires.round(jiff::Unit::Second).unwrap().to_string())}})
}

/// kubeadm's bootstrap controllers: cluster-info signed per signing token (a detached
/// HS256 JWS keyed by the token), expired tokens deleted and their signatures dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_tokens_sign_cluster_info_until_they_expire() {
    let s = TestApiServer::start(None, &["--authorization-mode=Node,RBAC"]).await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &["--controllers=bootstrapsigner,tokencleaner"],
    )
    .await;
    let cm = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
    c.create("/api/v1/namespaces/kube-public/configmaps", &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-info"}, "data": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}})).await;
    let now = jiff::Timestamp::now();
    let secrets = "/api/v1/namespaces/kube-system/secrets";
    c.create(
        secrets,
        &bootstrap_token("abcdef", now + jiff::SignedDuration::from_hours(1)),
    )
    .await;
    c.create(
        secrets,
        &bootstrap_token("ghijkl", now + jiff::SignedDuration::from_secs(3)),
    )
    .await;
    let data = wait_for("both tokens sign", Duration::from_secs(20), || async {
        let d = c.get(cm).await.json()["data"].clone();
        (d["jws-kubeconfig-abcdef"].is_string() && d["jws-kubeconfig-ghijkl"].is_string())
            .then_some(d)
    })
    .await;
    let jws = data["jws-kubeconfig-abcdef"].as_str().unwrap();
    let (header, sig) = jws.split_once("..").expect("detached payload");
    let header =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap();
    assert_eq!(
        String::from_utf8(header).unwrap(),
        r#"{"alg":"HS256","kid":"abcdef"}"#
    );
    assert_eq!(sig.len(), 43, "a base64url HMAC-SHA256");
    // The short-lived token is deleted once expired, and stops signing.
    wait_for(
        "expired token cleaned up and unsigned",
        Duration::from_secs(20),
        || async {
            let gone = c
                .get(&format!("{secrets}/bootstrap-token-ghijkl"))
                .await
                .status
                == 404;
            let d = c.get(cm).await.json()["data"].clone();
            (gone && d["jws-kubeconfig-ghijkl"].is_null() && d["jws-kubeconfig-abcdef"].is_string())
                .then_some(())
        },
    )
    .await;
}

/// Legacy service-account token Secrets get a token (signed with the apiserver's key),
/// the CA and the namespace; the token authenticates as the account; the Secret goes
/// with the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_token_secrets_are_filled_and_work() {
    let s = TestApiServer::start(None, &["--authorization-mode=Node,RBAC"]).await;
    let c = s.client.clone();
    let key = s.dir.path().join("certs").join("service-account.key");
    let ca = s.dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=serviceaccount-token",
            &format!("--service-account-private-key-file={}", key.display()),
            &format!("--root-ca-file={}", ca.display()),
        ],
    )
    .await;
    let sa = c
        .create(
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "robot"}}),
        )
        .await;
    c.create("/api/v1/namespaces/default/secrets", &json!({"apiVersion": "v1", "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}})).await;
    let secret = wait_for("token filled in", Duration::from_secs(20), || async {
        let s = c
            .get("/api/v1/namespaces/default/secrets/robot-token")
            .await
            .json();
        s["data"]["token"].is_string().then_some(s)
    })
    .await;
    let field = |k: &str| {
        String::from_utf8(
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                secret["data"][k].as_str().unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(field("namespace"), "default");
    assert!(field("ca.crt").contains("BEGIN CERTIFICATE"));
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa["metadata"]["uid"]
    );
    let token = field("token");
    let as_robot = Client::new(s.port).with_token(Some(&token));
    let r = as_robot
        .send_json(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );

    let r = c
        .send_json(
            "DELETE",
            "/api/v1/namespaces/default/serviceaccounts/robot",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "token secret deleted with its account",
        Duration::from_secs(20),
        || async {
            (c.get("/api/v1/namespaces/default/secrets/robot-token")
                .await
                .status
                == 404)
                .then_some(())
        },
    )
    .await;
    let r = as_robot.get("/api/v1/namespaces/default/pods").await;
    assert_eq!(r.status, 401, "the token dies with its secret");
}

/// metrics.k8s.io served as metrics-server serves it (PodMetrics named and labelled
/// like the pods), here through a CRD so the test controls the numbers.
async fn serve_pod_metrics(c: &Client) {
    c.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &json!({"apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pods.metrics.k8s.io", "annotations": {"api-approved.kubernetes.io": "unapproved, test only"}},
        "spec": {"group": "metrics.k8s.io", "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})).await;
    wait_for("metrics.k8s.io served", Duration::from_secs(20), || async {
        (c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
            .await
            .status
            == 200)
            .then_some(())
    })
    .await;
}

/// The HPA reads usage from metrics.k8s.io against the pods' requests, scales the target
/// by ceil(ratio * pods) within upstream's default scale-up rate, and reports why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizontal_pod_autoscaler_follows_served_metrics() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let c = s.client.clone();
    serve_pod_metrics(&c).await;
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=deployment,replicaset,horizontalpodautoscaling",
            "--horizontal-pod-autoscaler-sync-period=1s",
        ],
    )
    .await;
    c.create("/apis/apps/v1/namespaces/default/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": "100m"}}}]}}}})).await;
    // Two running pods, each using 200m of its 100m request.
    let pods = wait_for("two running pods", Duration::from_secs(20), || async {
        let list = c
            .get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
            .await
            .json();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 2).then_some(items)
    })
    .await;
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let r = c.merge_patch(&format!("/api/v1/namespaces/default/pods/{name}/status"),
            &json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        c.create(
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            &json!({"apiVersion": "metrics.k8s.io/v1beta1",
            "kind": "PodMetrics", "metadata": {"name": name, "labels": {"app": "web"}},
            "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
            "containers": [{"name": "c", "usage": {"cpu": "200m", "memory": "10Mi"}}]}),
        )
        .await;
    }
    c.create("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers", &json!({"apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}})).await;
    // 200 % of a 50 % target wants 8; the default rate (max of 4 pods and 100 % per 15 s) allows 6.
    let hpa = wait_for("scaled to 6", Duration::from_secs(30), || async {
        let h = c
            .get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
            .await
            .json();
        (h["status"]["desiredReplicas"] == 6).then_some(h)
    })
    .await;
    let d = c
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .json();
    assert_eq!(d["spec"]["replicas"], 6);
    assert_eq!(
        hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        200
    );
    let cond = |t: &str| {
        hpa["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(cond("ScalingActive")["reason"], "ValidMetricFound");
    assert_eq!(
        cond("ScalingActive")["message"],
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
    );
    assert_eq!(cond("ScalingLimited")["reason"], "ScaleUpLimit");
    let events = c
        .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb")
        .await
        .json();
    let rescale: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "SuccessfulRescale")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        rescale,
        ["New size: 6; reason: cpu resource utilization (percentage of request) above target"]
    );

    // A target without metrics: ScalingActive False with upstream's reason.
    c.create("/apis/apps/v1/namespaces/default/deployments", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "quiet"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "quiet"}},
            "template": {"metadata": {"labels": {"app": "quiet"}}, "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": "100m"}}}]}}}})).await;
    c.create("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers", &json!({"apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler", "metadata": {"name": "quiet"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "quiet"}, "maxReplicas": 3}})).await;
    wait_for(
        "metrics missing reported",
        Duration::from_secs(30),
        || async {
            let h = c
                .get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/quiet")
                .await
                .json();
            h["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| {
                    c["type"] == "ScalingActive"
                        && c["status"] == "False"
                        && c["reason"] == "FailedGetResourceMetric"
                })
                .then_some(())
        },
    )
    .await;
}
