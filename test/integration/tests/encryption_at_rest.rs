//! Encryption at rest with real etcd: with `--encryption-provider-config` naming secrets,
//! `etcdctl get` of a Secret's key shows only the provider's prefix and ciphertext, while
//! kubectl reads the Secret back (from the watch cache and after a restart); resources
//! not named stay plain.

use integration_tests::apiserver::TestApiServer;
use integration_tests::etcd::Etcd;
use std::process::Command;

const MARKER: &str = "plaintext-marker-4711";

fn etcd_value(endpoint: &str, key: &str) -> Vec<u8> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "get", key, "--print-value-only"])
        .output()
        .expect("etcdctl (etcd-client) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_encrypted_in_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    // A 32-byte key, base64.
    std::fs::write(
        &config,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: [{name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Pz8/Pz8=}]\n  - identity: {}\n",
    )
    .unwrap();
    let flag = format!("--encryption-provider-config={}", config.display());
    let mut s = TestApiServer::start(Some(&etcd.endpoint), &[&flag]).await;
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{password: {MARKER}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{note: {MARKER}}}\n"
        )),
    );
    let prefix = format!("/registry-{}", s.port);
    let stored = etcd_value(&etcd.endpoint, &format!("{prefix}/secrets/default/s"));
    assert!(
        stored.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
    assert!(!contains(&stored, MARKER) && !contains(&stored, "password"));
    // Not named in the configuration: plain.
    let plain = etcd_value(&etcd.endpoint, &format!("{prefix}/configmaps/default/c"));
    assert!(contains(&plain, MARKER));

    let read = |s: &TestApiServer| {
        s.kubectl_ok(
            &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
            None,
        )
    };
    let expected = "cGxhaW50ZXh0LW1hcmtlci00NzEx"; // base64 of the marker
    assert_eq!(read(&s), expected);
    // Updates are re-encrypted; a restart reads them back from etcd.
    s.kubectl_ok(&["label", "secret", "s", "rotated=yes"], None);
    let stored = etcd_value(&etcd.endpoint, &format!("{prefix}/secrets/default/s"));
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key1:") && !contains(&stored, "rotated"));
    s.kill9_and_restart().await;
    assert_eq!(read(&s), expected);
    let labels = s.kubectl_ok(&["get", "secrets", "-l", "rotated=yes", "-o", "name"], None);
    assert_eq!(labels.trim(), "secret/s");
}

#[tokio::test]
async fn a_bad_encryption_configuration_stops_the_apiserver() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    std::fs::write(
        &config,
        "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{aescbc: {keys: [{name: k, secret: c2hvcnQ=}]}}]\n",
    )
    .unwrap();
    let out = Command::new(integration_tests::binary("kube-apiserver"))
        .args([
            &format!("--encryption-provider-config={}", config.display()),
            &format!("--secure-port={}", integration_tests::free_port()),
            "--bind-address=127.0.0.1",
            &format!("--data-dir={}", dir.path().join("data").display()),
            &format!("--cert-dir={}", dir.path().join("certs").display()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret is not of the expected length"),
        "{err}"
    );
}

/// `--storage-media-type=application/vnd.kubernetes.protobuf` writes built-in objects as
/// upstream does (`k8s\0` + runtime.Unknown), which is also what an etcd written by an
/// upstream apiserver holds: after a restart everything is read back from those bytes.
#[tokio::test]
async fn objects_stored_as_protobuf() {
    let etcd = Etcd::start();
    let mut s = TestApiServer::start(
        Some(&etcd.endpoint),
        &["--storage-media-type=application/vnd.kubernetes.protobuf"],
    )
    .await;
    s.kubectl_ok(
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox:1.36",
            "--replicas=2",
        ],
        None,
    );
    s.kubectl_ok(
        &[
            "create",
            "configmap",
            "c",
            &format!("--from-literal=note={MARKER}"),
        ],
        None,
    );
    let prefix = format!("/registry-{}", s.port);
    for key in ["deployments/default/web", "configmaps/default/c"] {
        let stored = etcd_value(&etcd.endpoint, &format!("{prefix}/{key}"));
        assert!(
            stored.starts_with(b"k8s\0"),
            "{key}: {}",
            String::from_utf8_lossy(&stored)
        );
    }
    let before = s.kubectl_ok(&["get", "deployment", "web", "-o", "json"], None);
    s.kill9_and_restart().await;
    let after = s.kubectl_ok(&["get", "deployment", "web", "-o", "json"], None);
    let (b, a): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&before).unwrap(),
        serde_json::from_str(&after).unwrap(),
    );
    assert_eq!(a["spec"], b["spec"]);
    assert_eq!(a["metadata"]["uid"], b["metadata"]["uid"]);
    let note = s.kubectl_ok(
        &["get", "configmap", "c", "-o", "jsonpath={.data.note}"],
        None,
    );
    assert_eq!(note, MARKER);
    // Updates keep working on protobuf-stored objects.
    s.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"], None);
    let replicas = s.kubectl_ok(
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    );
    assert_eq!(replicas, "3");
}
