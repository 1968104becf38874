//! Server-side apply and field ownership through the real kubectl: `apply --server-side`
//! creates and updates, `managedFields` record who owns what, another manager's field is
//! a conflict (409 naming it) unless forced, and fields a manager stops applying go.

use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1"}
      - {name: sidecar, image: "busybox:1"}
"#;

fn managed(s: &TestApiServer) -> Vec<Value> {
    let out = s.kubectl_ok(
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields}",
        ],
        None,
    );
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_and_removal() {
    let s = TestApiServer::start(None, &[]).await;
    let out = s.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(DEPLOY));
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let mf = managed(&s);
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["manager"], "kubectl");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        mf[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
    // Ownership follows the types' markers: a LabelSelector is owned whole (atomic).
    assert_eq!(mf[0]["fieldsV1"]["f:spec"]["f:selector"], json!({}));

    // Service ports are keyed by port *and* protocol: one port number twice is fine.
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec:\n  selector: {app: dns}\n  ports:\n  - {name: udp, port: 53, protocol: UDP}\n  - {name: tcp, port: 53, protocol: TCP}\n";
    s.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(svc));
    let out = s.kubectl_ok(
        &[
            "get",
            "svc",
            "dns",
            "-o",
            "jsonpath={.metadata.managedFields[0].fieldsV1.f:spec.f:ports}",
        ],
        None,
    );
    let ports: Value = serde_json::from_str(&out).unwrap();
    assert!(
        ports.get(r#"k:{"port":53,"protocol":"UDP"}"#).is_some(),
        "{out}"
    );
    assert!(
        ports.get(r#"k:{"port":53,"protocol":"TCP"}"#).is_some(),
        "{out}"
    );
    let udp_only = svc.replace("  - {name: tcp, port: 53, protocol: TCP}\n", "");
    s.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(&udp_only));
    let names = s.kubectl_ok(
        &["get", "svc", "dns", "-o", "jsonpath={.spec.ports[*].name}"],
        None,
    );
    assert_eq!(names, "udp");

    // Re-applying the same configuration changes nothing.
    let rv = s.kubectl_ok(
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
        None,
    );
    s.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(DEPLOY));
    let rv2 = s.kubectl_ok(
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
        None,
    );
    assert_eq!(rv, rv2, "a no-op apply must not write");

    // kubectl scale owns replicas through the scale subresource: applying another count
    // conflicts, naming the owner; --force-conflicts takes the field back.
    s.kubectl_ok(&["scale", "deploy", "web", "--replicas=5"], None);
    let scaled = DEPLOY.replace("replicas: 2", "replicas: 3");
    let (ok, _, err) = s.kubectl(&["apply", "--server-side", "-f", "-"], Some(&scaled));
    assert!(!ok);
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    s.kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&scaled),
    );
    let r = s.kubectl_ok(
        &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
        None,
    );
    assert_eq!(r, "3");
    assert!(managed(&s).iter().all(|m| m["operation"] == "Apply"));

    // Fields the manager no longer applies are removed (a label and a container);
    // fields another manager set stay.
    s.kubectl_ok(&["label", "deploy", "web", "owner=ops"], None);
    let trimmed = scaled
        .replace(", tier: front", "")
        .replace("      - {name: sidecar, image: \"busybox:1\"}\n", "");
    s.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(&trimmed));
    let d: Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "deploy", "web", "-o", "json"], None)).unwrap();
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web", "owner": "ops"})
    );
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    let managers: Vec<String> = managed(&s)
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["manager"].as_str().unwrap(),
                m["operation"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        managers.contains(&"kubectl-label/Update".to_string()),
        "{managers:?}"
    );

    // Client-side writes are recorded as Update by their field manager.
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: \"1\"}\n"),
    );
    let cm: Value = serde_json::from_str(&s.kubectl_ok(
        &["get", "cm", "cm", "-o", "json", "--show-managed-fields"],
        None,
    ))
    .unwrap();
    assert_eq!(
        cm["metadata"]["managedFields"][0]["manager"],
        "kubectl-client-side-apply"
    );
    assert_eq!(cm["metadata"]["managedFields"][0]["operation"], "Update");

    // Apply needs a field manager.
    let r = s
        .client
        .request(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/web",
            "application/apply-patch+yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
