//! Authentication with the real kubectl: x509 client certificates (CN/O) against
//! `--client-ca-file`, bearer tokens from `--token-auth-file`, 401 for missing or bad
//! credentials when anonymous requests are off, `kubectl auth whoami`, TokenReview; a
//! front proxy's headers, on the apiserver and on a component's secure port.

use integration_tests::apiserver::{TestApiServer, kubectl_as};
use serde_json::{Value, json};
use std::path::Path;

use integration_tests::pki::{leaf, leaf_v1, pki};

fn kubectl(cfg: &Path, args: &[&str]) -> (bool, String, String) {
    kubectl_as(cfg, args, "")
}

fn whoami(cfg: &Path) -> Value {
    let (ok, out, err) = kubectl(cfg, &["auth", "whoami", "-o", "json"]);
    assert!(ok, "whoami: {err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_tokens_and_401s() {
    let pki_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(pki_dir.path(), "alice", "/CN=alice/O=dev/O=ops");
    let (_, foreign_cert, foreign_key) =
        pki(pki_dir.path(), "mallory", "/CN=mallory/O=system:masters");
    let tokens = pki_dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "secret-token,bob,1002,\"qa,system:masters\"\nharness-token,harness,0\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--client-ca-file={}", ca.display()),
            &format!("--token-auth-file={}", tokens.display()),
            "--anonymous-auth=false",
        ],
        Some("harness-token"),
    )
    .await;

    // x509: CN is the user, O the groups.
    let alice = s.user_kubeconfig(
        "alice",
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let me = whoami(&alice);
    assert_eq!(me["kind"], "SelfSubjectReview");
    assert_eq!(me["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!(["dev", "ops", "system:authenticated"])
    );
    assert!(kubectl(&alice, &["get", "namespaces"]).0);

    // An X.509 v1 certificate (plain `openssl x509 -req`) authenticates the same way, over
    // TLS 1.3 and TLS 1.2 alike; one signed by another CA does not.
    let (v1_cert, v1_key) = leaf_v1(pki_dir.path(), "alice-ca", "carol", "/CN=carol/O=qa");
    let text = integration_tests::openssl(
        pki_dir.path(),
        &["x509", "-in", "carol.crt", "-noout", "-text"],
    );
    assert!(text.contains("Version: 1 (0x0)"), "{text}");
    let carol = s.user_kubeconfig(
        "carol",
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            v1_cert.display(),
            v1_key.display()
        ),
    );
    let me = whoami(&carol);
    assert_eq!(me["status"]["userInfo"]["username"], "carol");
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!(["qa", "system:authenticated"])
    );
    for tls in [
        ["--tlsv1.3", "--tls-max", "1.3"],
        ["--tlsv1.2", "--tls-max", "1.2"],
    ] {
        let out = std::process::Command::new("curl")
            .args(["-sk", "--cert", &v1_cert.display().to_string()])
            .args(["--key", &v1_key.display().to_string()])
            .args(tls)
            .args(["-X", "POST", "-H", "Content-Type: application/json", "-d"])
            .arg(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#)
            .arg(format!(
                "https://127.0.0.1:{}/apis/authentication.k8s.io/v1/selfsubjectreviews",
                s.port
            ))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains(r#""username":"carol""#), "{tls:?}: {body}");
    }
    let (v1_foreign, v1_foreign_key) = leaf_v1(
        pki_dir.path(),
        "mallory-ca",
        "eve",
        "/CN=eve/O=system:masters",
    );
    let eve = s.user_kubeconfig(
        "eve",
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            v1_foreign.display(),
            v1_foreign_key.display()
        ),
    );
    let (ok, _, err) = kubectl(&eve, &["get", "pods"]);
    assert!(!ok && err.contains("Unauthorized"), "{err}");

    // Static tokens.
    let bob = s.user_kubeconfig("bob", "    token: secret-token\n");
    let me = whoami(&bob);
    assert_eq!(me["status"]["userInfo"]["username"], "bob");
    assert_eq!(me["status"]["userInfo"]["uid"], "1002");

    // Unknown tokens, no credentials, and certificates from another CA are refused.
    let stranger = s.user_kubeconfig("stranger", "    token: not-a-token\n");
    let (ok, _, err) = kubectl(&stranger, &["get", "pods"]);
    assert!(!ok && err.contains("Unauthorized"), "{err}");
    let foreign = s.user_kubeconfig(
        "foreign",
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            foreign_cert.display(),
            foreign_key.display()
        ),
    );
    assert!(!kubectl(&foreign, &["get", "pods"]).0);
    let anonymous = integration_tests::client::Client::new(s.port);
    let r = anonymous.get("/api/v1/namespaces").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "Unauthorized");
    assert_eq!(r.json()["code"], 401);
    let long = format!("Bearer {}", "x".repeat(10_000));
    let garbage: [&[u8]; 4] = [
        b"Bearer",
        b"Bearer \xff\xfe\x80",
        b"Basic abc",
        long.as_bytes(),
    ];
    for garbage in garbage {
        let mut send = anonymous.connect().await;
        let req = hyper::Request::get("/api")
            .header("host", "localhost")
            .header(
                "authorization",
                http::HeaderValue::from_bytes(garbage).unwrap(),
            )
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 401, "{garbage:?}");
    }

    // TokenReview answers whether a token authenticates, and as whom.
    let create = ["create", "-o", "json", "-f", "-"];
    let (ok, out, err) = kubectl_as(
        &bob,
        &create,
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"secret-token"}}"#,
    );
    assert!(ok, "{err}");
    let review: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(review["status"]["user"]["username"], "bob");
    let (ok, out, _) = kubectl_as(
        &bob,
        &create,
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"wrong"}}"#,
    );
    assert!(ok);
    let review: Value = serde_json::from_str(&out).unwrap();
    assert!(review["status"]["authenticated"].is_null(), "{review}");
    assert!(s.log().lines().all(|l| !l.contains("panic")));
}

/// Front-proxy authentication (`--requestheader-*`): a proxy certificate from the
/// request-header CA with an allowed common name names the user in headers; anyone else's
/// headers are ignored or refused.
#[tokio::test]
async fn front_proxy_request_headers() {
    let pki_dir = tempfile::tempdir().unwrap();
    let dir = pki_dir.path();
    let (client_ca, alice_cert, alice_key) = pki(dir, "alice", "/CN=alice");
    let (proxy_ca, proxy_cert, proxy_key) =
        pki(dir, "front-proxy-client", "/CN=front-proxy-client");
    let (rogue_cert, rogue_key) = leaf(dir, "front-proxy-client-ca", "rogue", "/CN=rogue-proxy");
    let s = TestApiServer::start(
        None,
        &[
            &format!("--client-ca-file={}", client_ca.display()),
            &format!("--requestheader-client-ca-file={}", proxy_ca.display()),
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-uid-headers=X-Remote-Uid",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--anonymous-auth=false",
            "--authorization-mode=Node,RBAC",
        ],
    )
    .await;
    let review = |c: integration_tests::client::Client| async move {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        c.send_json(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &body,
        )
        .await
    };
    let proxy =
        integration_tests::client::Client::new(s.port).with_client_cert(&proxy_cert, &proxy_key);

    let r = review(
        proxy
            .clone()
            .with_header("X-Remote-User", "carol")
            .with_header("X-Remote-Uid", "42")
            .with_header("X-Remote-Group", "g1")
            .with_header("X-Remote-Group", "g2")
            .with_header("X-Remote-Extra-Scopes", "read")
            .with_header("X-Remote-Extra-Example.com%2fteam", "blue"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["status"]["userInfo"],
        json!({"username": "carol", "uid": "42", "groups": ["g1", "g2", "system:authenticated"],
               "extra": {"example.com/team": ["blue"], "scopes": ["read"]}})
    );

    // The proxy's own certificate is not a user certificate.
    let r = review(proxy.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // A certificate from the same CA with another common name may not name users.
    let rogue = integration_tests::client::Client::new(s.port)
        .with_client_cert(&rogue_cert, &rogue_key)
        .with_header("X-Remote-User", "root");
    assert_eq!(review(rogue).await.status, 401);
    // Users' own certificates authenticate them; their user headers mean nothing.
    let alice = integration_tests::client::Client::new(s.port)
        .with_client_cert(&alice_cert, &alice_key)
        .with_header("X-Remote-User", "root")
        .with_header("X-Remote-Group", "system:masters");
    let r = review(alice).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["status"]["userInfo"],
        json!({"username": "alice", "groups": ["system:authenticated"]})
    );
    // Aggregated API servers learn the same settings from a well-known ConfigMap.
    let path = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";
    let data = integration_tests::wait_for(
        "authentication ConfigMap",
        std::time::Duration::from_secs(10),
        || async {
            let r = s.client.get(path).await;
            (r.status == 200).then(|| r.json()["data"].clone())
        },
    )
    .await;
    assert_eq!(
        data["requestheader-allowed-names"],
        r#"["front-proxy-client"]"#
    );
    assert_eq!(
        data["requestheader-username-headers"],
        r#"["X-Remote-User"]"#
    );
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        r#"["X-Remote-Extra-"]"#
    );
    assert_eq!(
        data["client-ca-file"],
        std::fs::read_to_string(&client_ca).unwrap()
    );
    assert_eq!(
        data["requestheader-client-ca-file"],
        std::fs::read_to_string(&proxy_ca).unwrap()
    );
    // Headers without a proxy certificate are ignored: no credentials, 401.
    let bare = integration_tests::client::Client::new(s.port).with_header("X-Remote-User", "carol");
    assert_eq!(review(bare).await.status, 401);

    // A component's secure port (here the scheduler's) learns both CAs from that
    // ConfigMap through its authentication kubeconfig and authenticates the same way;
    // authorization is still the apiserver's (system:masters needs no review).
    let (root_cert, root_key) = leaf(dir, "alice-ca", "root", "/CN=root/O=system:masters");
    let sched = integration_tests::component::TestScheduler::start(&s.kubeconfig(), &[]).await;
    let port = || integration_tests::client::Client::new(sched.port);
    let r = port()
        .with_client_cert(&alice_cert, &alice_key)
        .get("/metrics")
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "forbidden: User \"alice\" cannot get path \"/metrics\""
    );
    let r = port()
        .with_client_cert(&root_cert, &root_key)
        .get("/metrics")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let via_proxy = port()
        .with_client_cert(&proxy_cert, &proxy_key)
        .with_header("X-Remote-User", "carol")
        .with_header("X-Remote-Group", "system:masters");
    assert_eq!(via_proxy.get("/metrics").await.status, 200);
    let rogue = port()
        .with_client_cert(&rogue_cert, &rogue_key)
        .with_header("X-Remote-User", "carol")
        .with_header("X-Remote-Group", "system:masters");
    assert_eq!(rogue.get("/metrics").await.status, 401);
    assert_eq!(port().get("/metrics").await.status, 403);
}
