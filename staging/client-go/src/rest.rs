//! A client from `--kubeconfig` (or the in-cluster service account), as client-go's
//! `clientcmd` builds one, with the component's user agent.

use std::path::Path;

/// A kubeconfig naming certificate files (not embedding them) gets a client that reads
/// them again when they change, so a rotated certificate is used on the next connection.
pub async fn client(kubeconfig: Option<&Path>, user_agent: &str) -> Result<kube::Client, String> {
    let config = config(kubeconfig, user_agent).await?;
    if let Some(path) = kubeconfig
        && config.proxy_url.is_none()
        && config.tls_server_name.is_none()
        && let Some((cert, key)) = crate::cert_reload::certificate_files(path)?
    {
        return crate::cert_reload::client(config, cert, key, true);
    }
    kube::Client::try_from(config).map_err(|e| format!("building the client: {e}"))
}

/// The client configuration behind [`client`], for clients that differ only in
/// credentials (the controller-manager's per-controller service accounts).
pub async fn config(kubeconfig: Option<&Path>, user_agent: &str) -> Result<kube::Config, String> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no kubeconfig given and not in a cluster: {e}"))?,
    };
    config.headers.push((
        http::header::USER_AGENT,
        user_agent.parse().map_err(|_| "bad user agent")?,
    ));
    Ok(config)
}
