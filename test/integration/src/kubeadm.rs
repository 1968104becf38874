//! Running our kubeadm in tests, and an apiserver on the PKI it makes.

use std::path::Path;
use std::process::Command;

/// Runs kubeadm; (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(crate::binary("kubeadm"))
        .args(args)
        .output()
        .expect("running kubeadm");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs kubeadm, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let (ok, out, err) = run(args);
    assert!(ok, "kubeadm {args:?}: {out}{err}");
    out
}

/// Upstream's documented way to compute `--discovery-token-ca-cert-hash`.
pub fn openssl_ca_hash(ca: &Path) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -in {} -noout | openssl pkey -pubin -outform der | sha256sum",
            ca.display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// The apiserver flags kubeadm's manifest passes for the PKI under `pki`.
pub fn apiserver_flags(pki: &Path) -> Vec<String> {
    let p = |f: &str| pki.join(f).display().to_string();
    vec![
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!("--client-ca-file={}", p("ca.crt")),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        "--authorization-mode=Node,RBAC".into(),
        "--enable-bootstrap-token-auth".into(),
    ]
}
