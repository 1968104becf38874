//! API aggregation against a test extension API server with its own TLS and delegated
//! authentication and authorization: APIServices (local ones for every served group
//! version, and a remote one), proxying with the caller's identity, a streamed watch
//! through the proxy, discovery, and availability with upstream's reasons.

use base64::Engine;
use integration_tests::apiserver::TestApiServer;
use integration_tests::extension_apiserver::{self, GROUP, VERSION};
use integration_tests::pki::pki;
use serde_json::{Value, json};
use std::time::Duration;

fn available(s: &TestApiServer, name: &str) -> Option<(String, String)> {
    let (ok, out, _) = s.kubectl(&["get", "apiservice", name, "-o", "json"], None);
    let a: Value = serde_json::from_str(&out).ok().filter(|_| ok)?;
    let c = a["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Available")?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

async fn wait_available(s: &TestApiServer, name: &str, want: (&str, &str)) {
    integration_tests::wait_for(
        &format!("{name} {want:?}"),
        Duration::from_secs(30),
        || async {
            available(s, name)
                .filter(|(st, r)| st == want.0 && r == want.1)
                .map(|_| ())
        },
    )
    .await;
}

// kubectl blocks a worker; the extension server answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_api_is_served_through_the_apiserver() {
    let pki_dir = tempfile::tempdir().unwrap();
    let (proxy_ca, proxy_cert, proxy_key) = pki(
        pki_dir.path(),
        "front-proxy-client",
        "/CN=front-proxy-client",
    );
    let s = TestApiServer::start(
        None,
        &[
            &format!("--requestheader-client-ca-file={}", proxy_ca.display()),
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            &format!("--proxy-client-cert-file={}", proxy_cert.display()),
            &format!("--proxy-client-key-file={}", proxy_key.display()),
            "--authorization-mode=RBAC",
        ],
    )
    .await;

    // Every group version served here has its local APIService, always available.
    wait_available(&s, "v1.apps", ("True", "Local")).await;
    wait_available(&s, "v1.", ("True", "Local")).await;
    let out = s.kubectl_ok(&["get", "apiservices"], None);
    assert!(out.starts_with("NAME"), "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SERVICE", "AVAILABLE", "AGE"], "{out}");
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["v1.apps", "Local", "True"])),
        "{out}"
    );

    let ext = extension_apiserver::start(&proxy_ca, s.client.clone(), "api.wardle.svc").await;
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&ext.ca_pem);
    let manifest = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
        // The server runs on this machine's loopback: an ExternalName Service names it.
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "wardle"},
            "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": format!("{VERSION}.{GROUP}")},
            "spec": {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1000, "versionPriority": 15,
                "service": {"namespace": "wardle", "name": "api", "port": ext.port}, "caBundle": ca_bundle}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "flunder-reader"},
            "rules": [{"apiGroups": [GROUP], "resources": ["flunders"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "flunder-readers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flunder-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "wardle-readers"}]},
    ]});
    s.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
    let name = format!("{VERSION}.{GROUP}");
    wait_available(&s, &name, ("True", "Passed")).await;
    let out = s.kubectl_ok(&["get", "apiservice", &name], None);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], [name.as_str(), "wardle/api", "True"], "{out}");

    let metric = |m: &str, name: &str| {
        m.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "aggregator_unavailable_apiservice{{name=\"{name}\"}}"
                ))
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    let m = s.client.get("/metrics").await.text();
    assert_eq!(metric(&m, &name).as_deref(), Some("0"), "{m}");
    assert_eq!(metric(&m, "v1.apps").as_deref(), Some("0"));
    let ready = s.client.get("/readyz?verbose").await.text();
    assert!(ready.contains("[+]autoregister-completion ok"), "{ready}");

    // A request through our apiserver reaches the extension server as the caller.
    let path = format!("/apis/{GROUP}/{VERSION}/namespaces/default/flunders");
    let out = s.kubectl_ok(
        &[
            "get",
            "--raw",
            &path,
            "--as=alice",
            "--as-group=wardle-readers",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "FlunderList", "{list}");
    assert_eq!(list["items"][0]["spec"]["requestedBy"], "alice", "{list}");
    assert_eq!(
        list["items"][0]["spec"]["requestedByGroups"],
        json!(["wardle-readers", "system:authenticated"]),
        "{list}"
    );
    assert!(
        *ext.reviews.lock().unwrap() > 0,
        "no delegated authorization"
    );
    assert!(
        ext.seen.lock().unwrap().iter().any(
            |(u, g)| u == "system:kube-aggregator" && g.contains(&"system:masters".to_string())
        ),
        "the discovery check identifies itself as upstream's"
    );
    // Our own authorization comes first: a user without the role never reaches it.
    let (ok, _, err) = s.kubectl(&["get", "--raw", &path, "--as=bob"], None);
    assert!(!ok && err.contains("Forbidden"), "{err}");

    // A watch streams through the proxy: the first event arrives while the backend
    // still holds the response open.
    let mut events = s.client.watch(&format!("{path}?watch=true")).await;
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("first event")
        .unwrap();
    assert_eq!(first["object"]["metadata"]["name"], "one", "{first}");
    let second = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("second event")
        .unwrap();
    assert_eq!(second["object"]["metadata"]["name"], "two", "{second}");

    // Discovery: the group is listed, legacy and aggregated, and kubectl maps the kind.
    let groups = s.client.get("/apis").await.json();
    let wardle = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == GROUP)
        .cloned()
        .unwrap_or_else(|| panic!("{groups}"));
    assert_eq!(wardle["preferredVersion"]["version"], VERSION);
    assert_eq!(groups["groups"][0]["name"], "apiregistration.k8s.io");
    let group = s.client.get(&format!("/apis/{GROUP}")).await;
    assert_eq!(group.status, 200, "{}", group.text());
    let out = s.kubectl_ok(&["api-resources", &format!("--api-group={GROUP}")], None);
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "flunders",
            "fl",
            &format!("{GROUP}/{VERSION}"),
            "true",
            "Flunder"
        ],
        "{out}"
    );
    // It serves no OpenAPI: the merged root does not name it.
    let root = s.client.get("/openapi/v3").await.json();
    assert!(root["paths"]["apis/apps/v1"].is_object(), "{root}");
    assert!(
        root["paths"][format!("apis/{GROUP}/{VERSION}")].is_null(),
        "{root}"
    );
    let out = s.kubectl_ok(&["get", "flunders", "-n", "default", "-o", "name"], None);
    assert_eq!(out.trim(), format!("flunder.{GROUP}/one"));

    // Without its Service the APIService is unavailable, with upstream's reason, and
    // requests for the group get upstream's 503.
    s.kubectl_ok(&["delete", "service", "api", "-n", "wardle"], None);
    wait_available(&s, &name, ("False", "ServiceNotFound")).await;
    let out = s.kubectl_ok(&["get", "apiservice", &name], None);
    assert!(out.contains("False (ServiceNotFound)"), "{out}");
    let r = s.client.get(&path).await;
    assert_eq!(
        (r.status, r.text()),
        (503, "service unavailable\n".to_string())
    );
    drop(ext);
}
