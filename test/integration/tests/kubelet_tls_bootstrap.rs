//! Kubelet TLS bootstrap and client certificate rotation, kubeadm-style: the kubelet
//! starts with only a bootstrap token (`--bootstrap-kubeconfig`), obtains its client
//! certificate through a CSR that the controller-manager approves and signs, joins as
//! `system:node:<name>`, and with `--rotate-certificates` renews the (here 20-second)
//! certificate before it expires while its node keeps renewing its Lease.

use integration_tests::apiserver::TestApiServer;
use integration_tests::component::TestControllerManager;
use integration_tests::node::{TestContainerd, TestKubelet};
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The ClusterRoleBindings `kubeadm init` creates for node bootstrap and rotation.
fn kubeadm_bindings() -> Vec<Value> {
    let bind = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    vec![
        bind(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            "system:bootstrappers:kubeadm:default-node-token",
        ),
        bind(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:bootstrappers:kubeadm:default-node-token",
        ),
        bind(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:nodes",
        ),
    ]
}

/// When the certificate expires (Unix seconds).
fn not_after(pem: &str) -> i64 {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    der.parse_x509().unwrap().validity().not_after.timestamp()
}

fn serial_of(pem: &str) -> String {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = der.parse_x509().unwrap();
    assert_eq!(
        cert.subject().to_string(),
        "O=system:nodes, CN=system:node:boot-node"
    );
    cert.raw_serial_as_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_bootstraps_and_rotates_its_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = integration_tests::pki::pki(dir.path(), "signer", "/CN=unused");
    let ca_key = dir.path().join("signer-ca.key");
    let s = TestApiServer::start(
        None,
        &[
            "--enable-bootstrap-token-auth",
            "--authorization-mode=Node,RBAC",
            &format!("--client-ca-file={}", ca.display()),
        ],
    )
    .await;
    let c = s.client.clone();
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=csrapproving,csrsigning",
            &format!("--cluster-signing-cert-file={}", ca.display()),
            &format!("--cluster-signing-key-file={}", ca_key.display()),
            "--cluster-signing-duration=20s",
        ],
    )
    .await;
    for b in kubeadm_bindings() {
        c.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &b)
            .await;
    }
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    c.create(
        "/api/v1/namespaces/kube-system/secrets",
        &json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "data": {"token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef"),
                "expiration": b64(&expires), "usage-bootstrap-authentication": b64("true"),
                "auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token")}}),
    )
    .await;
    // The bootstrap kubeconfig verifies the apiserver with its serving certificate.
    let serving = s.dir.path().join("certs/apiserver.crt");
    let bootstrap = dir.path().join("bootstrap-kubelet.conf");
    std::fs::write(
        &bootstrap,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: {}\n    server: https://127.0.0.1:{}\n  name: kubernetes\ncontexts:\n- context: {{cluster: kubernetes, user: tls-bootstrap-token-user}}\n  name: tls-bootstrap-token-user@kubernetes\ncurrent-context: tls-bootstrap-token-user@kubernetes\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: abcdef.0123456789abcdef\n",
            serving.display(),
            s.port
        ),
    )
    .unwrap();
    // serverTLSBootstrap: the kubelet API's certificate comes from the cluster too.
    let kubelet_config = dir.path().join("kubelet-config.yaml");
    std::fs::write(
        &kubelet_config,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserverTLSBootstrap: true\nauthentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\nauthorization:\n  mode: AlwaysAllow\n",
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubelet.conf");
    let cert_dir = dir.path().join("pki");
    let ctd = TestContainerd::start().await;
    let k = TestKubelet::start(
        &kubeconfig,
        &ctd,
        "boot-node",
        &[
            &format!("--bootstrap-kubeconfig={}", bootstrap.display()),
            &format!("--cert-dir={}", cert_dir.display()),
            "--rotate-certificates",
            "--fake-container-runtime",
            &format!("--config={}", kubelet_config.display()),
        ],
    )
    .await;
    // Bootstrapped: the node registered with its own identity, and the written
    // kubeconfig names the current certificate.
    wait_for("the node Ready", Duration::from_secs(30), || async {
        let n = c.get("/api/v1/nodes/boot-node").await.json();
        n["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    })
    .await;
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    let current = cert_dir.join("kubelet-client-current.pem");
    assert!(
        written.contains(&format!("client-certificate: {}", current.display())),
        "{written}"
    );
    assert!(!written.contains("token"), "{written}");
    let csrs = c
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests")
        .await
        .json();
    let first = csrs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["spec"]["username"] == "system:bootstrap:abcdef")
        .unwrap_or_else(|| panic!("no bootstrap CSR: {csrs}"));
    assert!(
        first["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("node-csr-"),
        "{first}"
    );
    assert_eq!(
        first["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    // The serving CSR waits for an administrator; until then no handshake succeeds.
    let serving = wait_for("the serving CSR", Duration::from_secs(20), || async {
        let csrs = c
            .get("/apis/certificates.k8s.io/v1/certificatesigningrequests")
            .await
            .json();
        csrs["items"]
            .as_array()?
            .iter()
            .find(|r| {
                r["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                    && r["spec"]["username"] == "system:node:boot-node"
            })
            .cloned()
    })
    .await;
    let name = serving["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("csr-"), "{serving}");
    assert_eq!(
        serving["spec"]["usages"],
        json!(["digital signature", "server auth"])
    );
    let subject = || {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{} </dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName 2>/dev/null",
                k.port
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        !subject().contains("system:node:boot-node"),
        "served before approval"
    );
    let mut approved = serving.clone();
    approved["status"]["conditions"] = json!([{"type": "Approved", "status": "True", "reason": "TestApproved", "message": "approved by the test"}]);
    let r = c
        .send_json(
            "PUT",
            &format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"),
            &approved,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let served = wait_for(
        "the issued serving certificate in use",
        Duration::from_secs(20),
        || async {
            let s = subject();
            s.contains("system:node:boot-node").then_some(s)
        },
    )
    .await;
    assert!(
        served.contains("IP Address:127.0.0.1") && served.contains("DNS:boot-node"),
        "{served}"
    );
    let first_pem = std::fs::read_to_string(&current).unwrap();
    let serial = serial_of(&first_pem);
    // Rotation: a new certificate (requested as the node itself) before the first
    // expires, and the node keeps renewing its Lease after the first has expired.
    let rotated = wait_for("a rotated certificate", Duration::from_secs(30), || async {
        let now = serial_of(&std::fs::read_to_string(&current).ok()?);
        (now != serial).then_some(now)
    })
    .await;
    assert_ne!(rotated, serial);
    let csrs = c
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests")
        .await
        .json();
    assert!(
        csrs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["spec"]["username"] == "system:node:boot-node"),
        "{csrs}"
    );
    // Past the first certificate's expiry, the node still renews its Lease.
    let expiry = not_after(&first_pem);
    while jiff::Timestamp::now().as_second() <= expiry {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/boot-node";
    let before = c.get(lease).await.json()["spec"]["renewTime"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = c.get(lease).await.json()["spec"]["renewTime"].clone();
        if now != before {
            break;
        }
        let log = k.log();
        assert!(
            std::time::Instant::now() < deadline,
            "the Lease was not renewed with the rotated certificate: {}",
            &log[log.len().saturating_sub(4000)..]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!k.log().contains("certificate has expired"), "{}", k.log());
}
