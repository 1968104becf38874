//! Service accounts end to end with the real kubectl: the ServiceAccount admission plugin
//! mounts a projected token volume (and refuses pods of missing accounts), TokenRequest
//! issues bound JWTs that authenticate as the account (and stop when the pod they are
//! bound to is gone), OIDC discovery serves the verification keys, and forged, expired,
//! truncated or wrongly addressed tokens are a 401 — never a crash.

use apiserver::authentication::jwt::Signer;
use base64::Engine;
use integration_tests::apiserver::{TestApiServer, kubectl_as};
use integration_tests::client::Client;
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_tokens_authenticate_until_their_pod_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "admin-token,admin,1,system:masters\n").unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=ServiceAccount",
        ],
        Some("admin-token"),
    )
    .await;
    let admin = s.user_kubeconfig("admin", "    token: admin-token\n");
    let c = &s.client;
    let setup = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\nimagePullSecrets: [{name: regcred}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: robot-view}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: robot, namespace: default}]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: empty}\n";
    let (ok, _, err) = kubectl_as(&admin, &["apply", "-f", "-"], setup);
    assert!(ok, "{err}");

    // Admission: the account's token volume is mounted; a missing account is refused.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "worker"},
        "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}});
    let r = c
        .send_json("POST", "/api/v1/namespaces/default/pods", &pod)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let volume = &created["spec"]["volumes"][0];
    let vname = volume["name"].as_str().unwrap();
    assert!(
        vname.starts_with("kube-api-access-") && vname.len() == 21,
        "{vname}"
    );
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"],
        json!({"expirationSeconds": 3607, "path": "token"})
    );
    // The account's pull secrets come with it.
    assert_eq!(
        created["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    assert_eq!(
        created["spec"]["containers"][0]["volumeMounts"][0],
        json!({"name": vname, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    );
    let r = c
        .send_json("POST", "/api/v1/namespaces/empty/pods", &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "pods \"p\" is forbidden: error looking up service account empty/default: serviceaccount \"default\" not found"
    );

    // TokenRequest bound to the pod.
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "worker", "uid": uid}}});
    let r = c
        .send_json(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            &req,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let tr = r.json();
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["audiences"], json!([ISSUER]));
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], uid);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // The token works with kubectl and RBAC sees the account.
    let robot = s.user_kubeconfig("robot", &format!("    token: {token}\n"));
    let (ok, out, err) = kubectl_as(&robot, &["auth", "whoami", "-o", "json"], "");
    assert!(ok, "{err}");
    let who: Value = serde_json::from_str(&out).unwrap();
    let info = &who["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:default:robot");
    assert_eq!(
        info["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["worker"])
    );
    let (ok, _, err) = kubectl_as(&robot, &["get", "pods"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&robot, &["get", "secrets"], "");
    assert!(
        !ok && err.contains("system:serviceaccount:default:robot"),
        "{err}"
    );

    // TokenReview with another audience does not accept it.
    let review = |aud: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": aud}});
    let r = c
        .send_json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(json!([ISSUER])),
        )
        .await;
    assert_eq!(r.json()["status"]["authenticated"], true, "{}", r.text());
    let r = c
        .send_json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(json!(["vault"])),
        )
        .await;
    // (`authenticated: false` is omitted, as upstream.)
    assert!(
        r.json()["status"]["authenticated"].is_null(),
        "{}",
        r.text()
    );
    assert!(r.json()["status"]["error"].is_string());

    // OIDC discovery, readable with the token itself.
    let with_token = Client::new(s.port).with_token(Some(&token));
    let disco = with_token.get("/.well-known/openid-configuration").await;
    assert_eq!(disco.status, 200, "{}", disco.text());
    assert_eq!(disco.json()["issuer"], ISSUER);
    let jwks = with_token.get("/openid/v1/jwks").await.json();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);

    // Once the pod is gone, so is the token.
    let r = c
        .request(
            "DELETE",
            "/api/v1/namespaces/default/pods/worker?gracePeriodSeconds=0",
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        with_token
            .get("/api/v1/namespaces/default/pods")
            .await
            .status,
        401
    );

    // Bad tokens, all 401: forged key, expired, wrong audience/issuer, truncated, junk.
    let signer = Signer::load(&s.dir.path().join("certs/service-account.key")).unwrap();
    let forger = Signer::generate(&dir.path().join("forger.key")).unwrap();
    let sa_uid = c
        .get("/api/v1/namespaces/default/serviceaccounts/robot")
        .await
        .json()["metadata"]["uid"]
        .clone();
    let now = jiff::Timestamp::now().as_second();
    let claims = |exp: i64, aud: &str, iss: &str| {
        json!({"aud": [aud], "exp": exp, "iat": now - 7200, "nbf": now - 7200, "iss": iss,
            "sub": "system:serviceaccount:default:robot",
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "robot", "uid": sa_uid}}})
    };
    let good = signer.sign(&claims(now + 600, ISSUER, ISSUER)).unwrap();
    assert_eq!(
        Client::new(s.port)
            .with_token(Some(&good))
            .get("/api/v1/namespaces/default/pods")
            .await
            .status,
        200
    );
    let bad: Vec<String> = vec![
        forger.sign(&claims(now + 600, ISSUER, ISSUER)).unwrap(),
        signer.sign(&claims(now - 3600, ISSUER, ISSUER)).unwrap(),
        signer
            .sign(&claims(now + 600, "someone-else", ISSUER))
            .unwrap(),
        signer
            .sign(&claims(now + 600, ISSUER, "https://evil.example"))
            .unwrap(),
        good[..good.len() - 10].to_string(),
        good.split('.').take(2).collect::<Vec<_>>().join("."),
        format!(
            "{}.e30.{}",
            good.split('.').next().unwrap(),
            good.split('.').nth(2).unwrap()
        ),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_string(),
        "eyJ.eyJ.eyJ".to_string(),
        "abcdef.0123456789abcdef".to_string(),
    ];
    for t in &bad {
        let r = Client::new(s.port)
            .with_token(Some(t))
            .get("/api/v1/namespaces/default/pods")
            .await;
        assert_eq!(r.status, 401, "{t}");
        assert_eq!(r.json()["reason"], "Unauthorized");
    }
    // Pseudo-random junk shaped like JWTs.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..200 {
        let mut part = || {
            let n = (seed % 40) as usize + 1;
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [(seed % 64) as usize] as char
                })
                .collect::<String>()
        };
        let t = format!("eyJ{}.{}.{}", part(), part(), part());
        let r = Client::new(s.port).with_token(Some(&t)).get("/api").await;
        assert_eq!(r.status, 401, "{t}");
    }
    assert_eq!(c.get("/healthz").await.status, 200);
}
