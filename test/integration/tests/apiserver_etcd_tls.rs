//! The apiserver on an etcd that speaks only mutual TLS (kubeadm's stacked etcd): the
//! etcd PKI from `kubeadm init phase certs`, the apiserver connecting with
//! `--etcd-cafile/--etcd-certfile/--etcd-keyfile` (apiserver-etcd-client) to an
//! `https://` endpoint; a client without a certificate is refused by etcd.

use integration_tests::apiserver::TestApiServer;
use integration_tests::etcd::Etcd;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_stores_in_an_etcd_that_requires_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    integration_tests::kubeadm::ok(&[
        "init",
        "phase",
        "certs",
        "all",
        "--cert-dir",
        &pki.display().to_string(),
        "--apiserver-advertise-address",
        "127.0.0.1",
    ]);
    let etcd = Etcd::start_tls(&pki);
    assert!(etcd.endpoint.starts_with("https://"));
    // Without a client certificate etcd refuses.
    let o = std::process::Command::new("etcdctl")
        .args([
            "--endpoints",
            &etcd.endpoint,
            "--cacert",
            &pki.join("etcd/ca.crt").display().to_string(),
            "--command-timeout=3s",
            "get",
            "/",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let p = |f: &str| pki.join(f).display().to_string();
    let s = TestApiServer::start(
        Some(&etcd.endpoint),
        &[
            &format!("--etcd-cafile={}", p("etcd/ca.crt")),
            &format!("--etcd-certfile={}", p("apiserver-etcd-client.crt")),
            &format!("--etcd-keyfile={}", p("apiserver-etcd-client.key")),
        ],
    )
    .await;
    let r = s
        .client
        .send_json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-tls"}, "data": {"k": "v"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // It is in etcd, read with the client certificate.
    let o = std::process::Command::new("etcdctl")
        .args([
            "--endpoints",
            &etcd.endpoint,
            "--cacert",
            &p("etcd/ca.crt"),
            "--cert",
            &p("apiserver-etcd-client.crt"),
            "--key",
            &p("apiserver-etcd-client.key"),
            "get",
            "--prefix",
            "--keys-only",
            "/",
        ])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&o.stdout);
    assert!(keys.contains("/configmaps/default/over-tls"), "{keys}");
}
