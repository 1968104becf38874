//! The real kubectl (the machine image's) against our kube-apiserver: YAML apply/create,
//! output formats, selectors, watch, patches and deletes, on both storage backends.

use integration_tests::apiserver::TestApiServer;
use integration_tests::etcd::Etcd;
use integration_tests::wait_for;
use serde_json::Value;
use std::time::Duration;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo, labels: {tier: config}}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: demo}
type: Opaque
data: {password: aHVudGVyMg==}
"#;

async fn scenario(s: &TestApiServer) {
    // apply creates, a second apply changes nothing, a changed field is configured.
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(APP));
    for line in [
        "namespace/demo created",
        "deployment.apps/web created",
        "service/web created",
        "configmap/cfg created",
        "secret/sec created",
    ] {
        assert!(out.contains(line), "apply output lacks {line:?}:\n{out}");
    }
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(APP));
    assert_eq!(out.matches("unchanged").count(), 5, "second apply:\n{out}");
    let out = s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&APP.replace("replicas: 2", "replicas: 4")),
    );
    assert!(out.contains("deployment.apps/web configured"), "{out}");

    // Server-side defaults and generation, through -o json.
    let d: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "deployment", "web", "-n", "demo", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let svc: Value = serde_json::from_str(
        &s.kubectl_ok(&["get", "svc", "web", "-n", "demo", "-o", "json"], None),
    )
    .unwrap();
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.0.0."), "clusterIP {ip}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);

    // Output formats and the printed table.
    let yaml = s.kubectl_ok(
        &["get", "configmap", "cfg", "-n", "demo", "-o", "yaml"],
        None,
    );
    assert!(
        yaml.contains("name: cfg") && yaml.contains("a: \"1\""),
        "{yaml}"
    );
    assert_eq!(
        s.kubectl_ok(&["get", "secret", "-n", "demo", "-o", "name"], None)
            .trim(),
        "secret/sec"
    );
    let table = s.kubectl_ok(&["get", "deployments", "-n", "demo"], None);
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("web"),
        "{table}"
    );
    let svc_table = s.kubectl_ok(&["get", "services", "-A"], None);
    assert!(
        svc_table.contains("kubernetes")
            && svc_table.contains("10.0.0.1")
            && svc_table.contains(ip),
        "{svc_table}"
    );

    // Label and field selectors, all namespaces.
    assert_eq!(
        s.kubectl_ok(
            &["get", "cm", "-A", "-l", "tier=config", "-o", "name"],
            None
        )
        .trim(),
        "configmap/cfg"
    );
    assert_eq!(
        s.kubectl_ok(
            &["get", "cm", "-A", "-l", "tier!=config,tier", "-o", "name"],
            None
        )
        .trim(),
        ""
    );
    let by_field = s.kubectl_ok(
        &[
            "get",
            "svc",
            "-A",
            "--field-selector",
            "metadata.namespace=default",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(by_field.trim(), "service/kubernetes");
    let (ok, _, err) = s.kubectl(
        &["get", "pods", "-A", "--field-selector", "spec.bogus=x"],
        None,
    );
    assert!(!ok && err.contains("field label not supported"), "{err}");

    // get --watch sees a later change.
    let kubeconfig = s.kubeconfig();
    let mut watcher = tokio::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["get", "configmaps", "-n", "demo", "--watch", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = watcher.stdout.take().unwrap();
    let collected = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = collected.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_for(
        "watch lists the existing configmap",
        Duration::from_secs(10),
        || {
            let c = collected.clone();
            async move { c.lock().unwrap().contains("configmap/cfg").then_some(()) }
        },
    )
    .await;
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, namespace: demo}\n"),
    );
    wait_for(
        "watch sees the new configmap",
        Duration::from_secs(10),
        || {
            let c = collected.clone();
            async move { c.lock().unwrap().contains("configmap/later").then_some(()) }
        },
    )
    .await;
    drop(watcher);

    // JSON patch and merge patch.
    s.kubectl_ok(
        &[
            "patch",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ],
        None,
    );
    s.kubectl_ok(
        &[
            "patch",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/a"}]"#,
        ],
        None,
    );
    let data = s.kubectl_ok(
        &[
            "get",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data}",
        ],
        None,
    );
    assert_eq!(data, r#"{"b":"2"}"#);
    // Strategic merge patch through kubectl's own verbs.
    s.kubectl_ok(
        &["scale", "deployment", "web", "-n", "demo", "--replicas=5"],
        None,
    );
    s.kubectl_ok(
        &[
            "set",
            "image",
            "deployment/web",
            "-n",
            "demo",
            "web=busybox:1.37",
        ],
        None,
    );
    s.kubectl_ok(
        &["label", "deployment", "web", "-n", "demo", "team=a"],
        None,
    );
    let d: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "deployment", "web", "-n", "demo", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1.37"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(d["metadata"]["labels"]["team"], "a");
    // annotate and rollout restart (a template annotation, so a new generation).
    s.kubectl_ok(
        &["annotate", "deployment", "web", "-n", "demo", "owner=ops"],
        None,
    );
    s.kubectl_ok(
        &["rollout", "restart", "deployment/web", "-n", "demo"],
        None,
    );
    let after: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "deployment", "web", "-n", "demo", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(after["metadata"]["annotations"]["owner"], "ops");
    assert!(
        after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    assert!(after["metadata"]["generation"].as_i64() > d["metadata"]["generation"].as_i64());
    // The metrics endpoint, as `kubectl get --raw` reads it.
    let metrics = s.kubectl_ok(&["get", "--raw", "/metrics"], None);
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");

    // Deletes: a namespaced object, then the namespace (Terminating until the namespace
    // controller empties it; new content is refused meanwhile).
    let out = s.kubectl_ok(&["delete", "configmap", "later", "-n", "demo"], None);
    assert!(out.contains("configmap \"later\" deleted"), "{out}");
    let (ok, _, err) = s.kubectl(&["get", "configmap", "later", "-n", "demo"], None);
    assert!(!ok && err.contains("NotFound"), "{err}");
    s.kubectl_ok(&["delete", "svc", "web", "-n", "demo"], None);
    s.kubectl_ok(&["delete", "namespace", "demo", "--wait=false"], None);
    let phase = s.kubectl_ok(
        &["get", "namespace", "demo", "-o", "jsonpath={.status.phase}"],
        None,
    );
    assert_eq!(phase, "Terminating");
    let (ok, _, err) = s.kubectl(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: demo}\n"),
    );
    assert!(
        !ok && err.contains("because it is being terminated"),
        "{err}"
    );
    let (ok, _, err) = s.kubectl(&["delete", "namespace", "kube-system"], None);
    assert!(
        !ok && err.contains("this namespace may not be deleted"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_against_embedded_store() {
    let s = TestApiServer::start(None, &[]).await;
    scenario(&s).await;
}

#[tokio::test]
async fn kubectl_against_etcd() {
    let etcd = Etcd::start();
    let s = TestApiServer::start(Some(&etcd.endpoint), &[]).await;
    scenario(&s).await;
}

/// kubectl's imperative commands send built-in objects as protobuf and read protobuf
/// answers, as client-go components do; what they create must be what a JSON client's
/// request would have made (Go's empty strings are unset, defaults filled in).
#[tokio::test]
async fn kubectl_imperative_commands_speak_protobuf() {
    let s = TestApiServer::start(None, &[]).await;
    let run = |args: &[&str]| s.kubectl_ok(args, None);
    run(&["create", "namespace", "pb"]);
    let out = run(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=3",
        "--port=80",
        "-n",
        "pb",
    ]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let out = run(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
        "-n",
        "pb",
    ]);
    assert!(out.contains("service/web exposed"), "{out}");
    run(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
        "--from-literal=empty=",
        "-n",
        "pb",
    ]);
    run(&[
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=password=hunter2",
        "-n",
        "pb",
    ]);
    run(&["create", "serviceaccount", "bot", "-n", "pb"]);
    run(&[
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods,configmaps",
        "-n",
        "pb",
    ]);
    run(&[
        "create",
        "rolebinding",
        "bot-reader",
        "--role=reader",
        "--serviceaccount=pb:bot",
        "-n",
        "pb",
    ]);
    run(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "-n",
        "pb",
        "--",
        "true",
    ]);
    run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox:1.36",
        "--schedule=*/5 * * * *",
        "-n",
        "pb",
    ]);
    run(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
        "-n",
        "pb",
    ]);
    run(&["create", "quota", "q", "--hard=pods=10,cpu=2", "-n", "pb"]);
    run(&["create", "priorityclass", "high", "--value=1000"]);
    run(&[
        "create",
        "ingress",
        "web",
        "--rule=example.test/=web:80",
        "-n",
        "pb",
    ]);
    let token = run(&["create", "token", "bot", "-n", "pb"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    let get = |path: String| {
        let c = s.client.clone();
        async move {
            let r = c.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            r.json()
        }
    };
    let d = get("/apis/apps/v1/namespaces/pb/deployments/web".into()).await;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert!(d["metadata"].get("generateName").is_none(), "{d}");
    assert!(d["metadata"]["creationTimestamp"].is_string(), "{d}");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(
        c["ports"][0],
        serde_json::json!({"containerPort": 80, "protocol": "TCP"})
    );

    let svc = get("/api/v1/namespaces/pb/services/web".into()).await;
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.contains('.')),
        "{svc}"
    );
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(svc["spec"]["selector"]["app"], "web");

    let cm = get("/api/v1/namespaces/pb/configmaps/cfg".into()).await;
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "empty": ""}));
    let sec = get("/api/v1/namespaces/pb/secrets/sec".into()).await;
    assert_eq!(sec["data"]["password"], "aHVudGVyMg==");
    assert_eq!(sec["type"], "Opaque");
    let role = get("/apis/rbac.authorization.k8s.io/v1/namespaces/pb/roles/reader".into()).await;
    assert_eq!(role["rules"][0]["apiGroups"], serde_json::json!([""]));
    let rb = get("/apis/rbac.authorization.k8s.io/v1/namespaces/pb/rolebindings/bot-reader".into())
        .await;
    assert_eq!(
        rb["subjects"][0],
        serde_json::json!({"kind": "ServiceAccount", "name": "bot", "namespace": "pb"})
    );
    let job = get("/apis/batch/v1/namespaces/pb/jobs/once".into()).await;
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["true"])
    );
    let cj = get("/apis/batch/v1/namespaces/pb/cronjobs/tick".into()).await;
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    let pdb = get("/apis/policy/v1/namespaces/pb/poddisruptionbudgets/web".into()).await;
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let q = get("/api/v1/namespaces/pb/resourcequotas/q".into()).await;
    assert_eq!(
        q["spec"]["hard"],
        serde_json::json!({"cpu": "2", "pods": "10"})
    );
    let pc = get("/apis/scheduling.k8s.io/v1/priorityclasses/high".into()).await;
    assert_eq!(pc["value"], 1000);
    let ing = get("/apis/networking.k8s.io/v1/namespaces/pb/ingresses/web".into()).await;
    let rule = &ing["spec"]["rules"][0];
    assert_eq!(rule["host"], "example.test");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        80
    );

    // kubectl deletes and waits for the object to be gone; a grace period means nothing
    // to kinds other than pods (upstream deletes them at once).
    run(&[
        "delete",
        "configmap",
        "cfg",
        "-n",
        "pb",
        "--grace-period=5",
        "--timeout=20s",
    ]);
    assert_eq!(
        s.client
            .get("/api/v1/namespaces/pb/configmaps/cfg")
            .await
            .status,
        404
    );

    // The answers themselves: an object, a list and a watch in protobuf decode to what
    // the JSON answers hold.
    let pb = "application/vnd.kubernetes.protobuf";
    let path = "/apis/apps/v1/namespaces/pb/deployments/web";
    let r = s
        .client
        .request_accepting("GET", path, pb, pb, bytes::Bytes::new())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], pb);
    let decoded = apimachinery::protobuf::decode_object(&r.body).unwrap();
    assert_eq!(decoded["kind"], "Deployment");
    assert_eq!(decoded["spec"], d["spec"]);
    assert_eq!(decoded["metadata"]["uid"], d["metadata"]["uid"]);
    let r = s
        .client
        .request_accepting(
            "GET",
            "/api/v1/namespaces/pb/services",
            pb,
            pb,
            bytes::Bytes::new(),
        )
        .await;
    let list = apimachinery::protobuf::decode_object(&r.body).unwrap();
    assert_eq!(list["kind"], "ServiceList");
    assert_eq!(
        list["items"][0]["spec"]["clusterIP"],
        svc["spec"]["clusterIP"]
    );
    let r = s
        .client
        .request_accepting(
            "GET",
            "/api/v1/namespaces/pb/secrets?watch=true&timeoutSeconds=1",
            pb,
            pb,
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let len = u32::from_be_bytes(r.body[..4].try_into().unwrap()) as usize;
    let event = apimachinery::protobuf::fields(&r.body[4..4 + len]).unwrap();
    assert_eq!(
        apimachinery::protobuf::string_field(&event, 1).as_deref(),
        Some("ADDED")
    );
    let raw = apimachinery::protobuf::bytes_field(&event, 2).unwrap();
    let inner =
        apimachinery::protobuf::bytes_field(&apimachinery::protobuf::fields(raw).unwrap(), 1)
            .unwrap();
    assert_eq!(
        apimachinery::protobuf::decode_object(inner).unwrap()["kind"],
        "Secret"
    );
    // A custom resource has no protobuf form: its clients are answered in JSON.
    assert!(!s.log().contains("panic"), "{}", s.log());
}
