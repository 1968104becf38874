//! TLS bootstrap (upstream `pkg/kubelet/certificate/bootstrap.LoadClientCert`): when the
//! `--kubeconfig` is missing or its client certificate has expired, the kubelet uses the
//! `--bootstrap-kubeconfig` credentials (a bootstrap token) to request a client
//! certificate, stores it as `<cert-dir>/kubelet-client-current.pem` and writes a
//! kubeconfig that names that file. The key of an unfinished request is kept in
//! `kubelet-client.key.tmp`, so that a restarted kubelet waits for the same request.

use super::csr::{generate_key, request_node_certificate};
use super::store::{FileStore, write_private};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TMP_KEY: &str = "kubelet-client.key.tmp";

/// Whether `kubeconfig` exists with a client certificate that is valid now.
pub fn client_config_still_valid(kubeconfig: &Path) -> bool {
    if !kubeconfig.exists() {
        return false;
    }
    let pem = match client_go::cert_reload::certificate_files(kubeconfig) {
        Ok(Some((cert, _))) => std::fs::read_to_string(cert).ok(),
        _ => embedded_certificate(kubeconfig),
    };
    let now = jiff::Timestamp::now().as_second();
    match pem.as_deref().and_then(super::validity) {
        Some((from, to)) => from <= now && now < to,
        None => {
            // Credentials of another kind (a token): the kubeconfig is used as it is.
            pem.is_none()
        }
    }
}

fn embedded_certificate(kubeconfig: &Path) -> Option<String> {
    embedded_pair(kubeconfig).map(|(cert, _)| cert)
}

/// The client certificate and key a kubeconfig embeds (`client-certificate-data`,
/// `client-key-data`), as kubeadm writes `kubelet.conf` on control-plane nodes.
pub fn embedded_pair(kubeconfig: &Path) -> Option<(String, String)> {
    use base64::Engine;
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let kc: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    let user = &kc["users"][0]["user"];
    let decode = |field: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(user[field].as_str()?.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    Some((
        decode("client-certificate-data")?,
        decode("client-key-data").unwrap_or_default(),
    ))
}

/// The bootstrap kubeconfig's cluster: its server and CA (a path made absolute, or data).
fn bootstrap_cluster(bootstrap: &Path) -> Result<(String, Option<String>, Option<String>), String> {
    let kc = kube::config::Kubeconfig::read_from(bootstrap)
        .map_err(|e| format!("reading bootstrap kubeconfig {}: {e}", bootstrap.display()))?;
    let context = kc.current_context.clone().unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .or(kc.clusters.first())
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| format!("bootstrap kubeconfig {}: no cluster", bootstrap.display()))?;
    let dir = bootstrap.parent().unwrap_or(Path::new("/"));
    let ca_file = cluster
        .certificate_authority
        .map(|p| dir.join(p).display().to_string());
    Ok((
        cluster.server.unwrap_or_default(),
        ca_file,
        cluster.certificate_authority_data,
    ))
}

/// Upstream's `writeKubeconfigFromBootstrapping`.
fn write_kubeconfig(
    kubeconfig: &Path,
    server: &str,
    ca_file: Option<&str>,
    ca_data: Option<&str>,
    pem: &Path,
) -> Result<(), String> {
    let ca = match (ca_file, ca_data) {
        (Some(f), _) => format!("    certificate-authority: {f}\n"),
        (None, Some(d)) => format!("    certificate-authority-data: {d}\n"),
        (None, None) => String::new(),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{ca}    server: {server}\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\npreferences: {{}}\nusers:\n- name: default-auth\n  user:\n    client-certificate: {p}\n    client-key: {p}\n",
        p = pem.display()
    );
    if let Some(d) = kubeconfig.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let tmp = kubeconfig.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, kubeconfig))
        .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))
}

/// Ensures `kubeconfig` holds valid client credentials, bootstrapping them from
/// `bootstrap` when it does not.
pub async fn load_client_cert(
    kubeconfig: &Path,
    bootstrap: &Path,
    cert_dir: &Path,
    node: &str,
    user_agent: &str,
) -> Result<(), String> {
    if client_config_still_valid(kubeconfig) {
        tracing::info!(kubeconfig = %kubeconfig.display(), "using the existing client credentials");
        return Ok(());
    }
    tracing::info!(bootstrap = %bootstrap.display(), "using the bootstrap kubeconfig to request a client certificate");
    let (server, ca_file, ca_data) = bootstrap_cluster(bootstrap)?;
    let store = FileStore::new(cert_dir, "kubelet-client");
    std::fs::create_dir_all(cert_dir)
        .map_err(|e| format!("creating {}: {e}", cert_dir.display()))?;
    let tmp_key: PathBuf = cert_dir.join(TMP_KEY);
    let key = match std::fs::read_to_string(&tmp_key) {
        Ok(k) if rcgen::KeyPair::from_pem(&k).is_ok() => k,
        _ => {
            let k = generate_key()?;
            write_private(&tmp_key, &k)?;
            k
        }
    };
    let client = client_go::rest::client(Some(bootstrap), user_agent).await?;
    let cert = request_node_certificate(&client, &key, node, Duration::from_secs(3600)).await?;
    let current = store.update(&cert, &key)?;
    let _ = std::fs::remove_file(&tmp_key);
    write_kubeconfig(
        kubeconfig,
        &server,
        ca_file.as_deref(),
        ca_data.as_deref(),
        &current,
    )?;
    tracing::info!(certificate = %current.display(), "client certificate issued");
    Ok(())
}
