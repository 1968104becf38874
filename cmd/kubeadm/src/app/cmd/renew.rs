//! `kubeadm certs renew <name>|all` (upstream `phases/certs/renewal`): a new key and a
//! certificate issued again by the local CA for what the current one was issued for
//! (subject, SANs, usages), valid `certificateValidityPeriod` from now; kubeconfig
//! files get their embedded client credentials replaced.

use crate::app::apis::kubeadm::InitConfig;
use crate::app::phases::{certs, kubeconfig};
use crate::app::util::pkiutil;
use base64::Engine;
use std::path::Path;

/// Every renewable name with upstream's description, in upstream's order.
pub fn renewable(cfg: &InitConfig) -> Vec<(String, &'static str)> {
    let mut out = vec![
        (
            "admin.conf".to_string(),
            "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
        ),
        (
            "apiserver".into(),
            "certificate for serving the Kubernetes API",
        ),
        (
            "apiserver-etcd-client".into(),
            "certificate the apiserver uses to access etcd",
        ),
        (
            "apiserver-kubelet-client".into(),
            "certificate for the API server to connect to kubelet",
        ),
        (
            "controller-manager.conf".into(),
            "certificate embedded in the kubeconfig file for the controller manager to use",
        ),
        (
            "etcd-healthcheck-client".into(),
            "certificate for liveness probes to healthcheck etcd",
        ),
        (
            "etcd-peer".into(),
            "certificate for etcd nodes to communicate with each other",
        ),
        ("etcd-server".into(), "certificate for serving etcd"),
        (
            "front-proxy-client".into(),
            "certificate for the front proxy client",
        ),
        (
            "scheduler.conf".into(),
            "certificate embedded in the kubeconfig file for the scheduler manager to use",
        ),
        (
            "super-admin.conf".into(),
            "certificate embedded in the kubeconfig file for the super-admin",
        ),
    ];
    if !cfg.local_etcd() {
        out.retain(|(n, _)| !n.starts_with("etcd-") && n != "apiserver-etcd-client");
    }
    out
}

fn renew_cert(cfg: &InitConfig, dir: &Path, base: &str, ca: &str) -> Result<(), String> {
    let (pem, _) = pkiutil::read_pair(dir, base)?;
    let spec = pkiutil::spec_of(&pem)?;
    let (ca_pem, ca_key) = pkiutil::read_pair(dir, ca).map_err(|e| {
        format!("failed to load the {ca} certificate authority: {e} (is it externally managed?)")
    })?;
    let key = pkiutil::generate_key(&cfg.cluster.encryption_algorithm)?;
    let cert = pkiutil::new_signed(&spec, cfg.cert_validity(), &key, &ca_pem, &ca_key)?;
    pkiutil::write_pair(dir, base, &cert, &key)
}

fn renew_kubeconfig(cfg: &InitConfig, dir: &Path, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let spec = pkiutil::spec_of(&kubeconfig::embedded_certificate(file)?)?;
    let (ca_pem, ca_key) = pkiutil::read_pair(dir, "ca")
        .map_err(|e| format!("failed to load the ca certificate authority: {e}"))?;
    let key = pkiutil::generate_key(&cfg.cluster.encryption_algorithm)?;
    let cert = pkiutil::new_signed(&spec, cfg.cert_validity(), &key, &ca_pem, &ca_key)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            let indent = &l[..l.len() - l.trim_start().len()];
            if l.trim_start().starts_with("client-certificate-data:") {
                format!("{indent}client-certificate-data: {}", b64(&cert))
            } else if l.trim_start().starts_with("client-key-data:") {
                format!("{indent}client-key-data: {}", b64(&key.serialize_pem()))
            } else {
                l.to_string()
            }
        })
        .collect();
    pkiutil::write_file(file, &(out.join("\n") + "\n"), 0o600)
}

/// Renews `which` ("all" or one name); the lines upstream prints.
pub fn renew(
    cfg: &InitConfig,
    which: &str,
    cert_dir: &Path,
    kubeconfig_dir: &Path,
) -> Result<String, String> {
    let names = renewable(cfg);
    let chosen: Vec<&(String, &str)> = names
        .iter()
        .filter(|(n, _)| which == "all" || n == which)
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "unknown certificate {which:?}: one of {}, or all",
            names
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut out = String::new();
    for (name, long) in chosen {
        if name.ends_with(".conf") {
            renew_kubeconfig(cfg, cert_dir, &kubeconfig_dir.join(name))?;
        } else {
            let c = certs::certificates(cfg)
                .into_iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("unknown certificate {name:?}"))?;
            renew_cert(cfg, cert_dir, c.base, c.ca.unwrap_or("ca"))?;
        }
        out.push_str(&format!("{long} renewed\n"));
    }
    if which == "all" {
        out.push_str("\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.\n");
    }
    Ok(out)
}
