//! A component's secure port (upstream `SecureServingOptions` with
//! `DelegatingAuthenticationOptions` / `DelegatingAuthorizationOptions`): the flags, and
//! serving `/healthz`, `/livez`, `/readyz`, `/metrics` over HTTPS with authentication and
//! authorization delegated to the apiserver.

use crate::delegated::DelegatedAuth;
use component_base::serving::{Endpoints, RequestAuthorizer};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Clone, Debug)]
pub struct SecureServingFlags {
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The port on which to serve HTTPS with authentication and authorization. If 0, don't serve HTTPS at all. (Default: the component's port.)
    #[arg(long = "secure-port")]
    pub secure_port: Option<u16>,
    /// The directory where the TLS certs are located. If --tls-cert-file and --tls-private-key-file are provided, this flag will be ignored.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// File containing the default x509 Certificate for HTTPS.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// kubeconfig file pointing at the 'core' kubernetes server with enough rights to create tokenreviews.authentication.k8s.io. This is optional. If empty, all token requests are considered to be anonymous and no client CA is looked up in the cluster.
    #[arg(long = "authentication-kubeconfig")]
    pub authentication_kubeconfig: Option<PathBuf>,
    /// If false, the authentication-kubeconfig will be used to lookup missing authentication configuration from the cluster (accepted; no lookup is done).
    #[arg(long = "authentication-skip-lookup", action = clap::ArgAction::Set, default_value_t = false)]
    pub authentication_skip_lookup: bool,
    /// If true, failures to look up missing authentication configuration from the cluster are not considered fatal (accepted; no lookup is done).
    #[arg(long = "authentication-tolerate-lookup-failure", action = clap::ArgAction::Set, default_value_t = true)]
    pub authentication_tolerate_lookup_failure: bool,
    /// kubeconfig file pointing at the 'core' kubernetes server with enough rights to create subjectaccessreviews.authorization.k8s.io. This is optional. If empty, all requests not skipped by authorization are forbidden.
    #[arg(long = "authorization-kubeconfig")]
    pub authorization_kubeconfig: Option<PathBuf>,
    /// A list of HTTP paths to skip during authorization, i.e. these are authorized without contacting the 'core' kubernetes server.
    #[arg(
        long = "authorization-always-allow-paths",
        value_delimiter = ',',
        default_value = "/healthz,/readyz,/livez"
    )]
    pub authorization_always_allow_paths: Vec<String>,
}

/// A client for delegated checks: the given kubeconfig, else in-cluster, else none.
async fn delegate(
    path: &Option<PathBuf>,
    what: &str,
    agent: &str,
) -> Result<Option<kube::Client>, String> {
    match path {
        Some(p) => crate::rest::client(Some(p), agent).await.map(Some),
        None => match kube::Config::incluster() {
            Ok(c) => kube::Client::try_from(c)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(_) => {
                tracing::warn!(
                    "no {what}-kubeconfig provided and not in a cluster; {what} of the secure port is not delegated"
                );
                Ok(None)
            }
        },
    }
}

impl SecureServingFlags {
    /// Serves `endpoints` (their authorizer set to the delegated one) on the secure port
    /// (`default_port` unless `--secure-port` says otherwise; 0 disables) until `stop`
    /// resolves. Fails at once when the port cannot be bound.
    pub async fn serve(
        &self,
        default_port: u16,
        cert_base: &str,
        agent: &str,
        mut endpoints: Endpoints,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let port = self.secure_port.unwrap_or(default_port);
        if port == 0 {
            return Ok(());
        }
        let authorizer: Arc<dyn RequestAuthorizer> = Arc::new(DelegatedAuth::new(
            delegate(&self.authentication_kubeconfig, "authentication", agent).await?,
            delegate(&self.authorization_kubeconfig, "authorization", agent).await?,
            self.authorization_always_allow_paths.clone(),
        ));
        endpoints.authorizer = Some(authorizer);
        let tls = component_base::serving::tls_config(
            self.tls_cert_file.as_deref(),
            self.tls_private_key_file.as_deref(),
            &self.cert_dir,
            cert_base,
        )?;
        let addr = SocketAddr::new(self.bind_address, port);
        let listener = tokio::spawn(component_base::serving::serve(
            addr,
            tls,
            Arc::new(endpoints),
            stop,
        ));
        // Fail fast when the port is taken.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if listener.is_finished() {
            return match listener.await {
                Ok(Err(e)) => Err(format!("serving on {addr}: {e}")),
                _ => Err(format!("serving on {addr} stopped")),
            };
        }
        Ok(())
    }
}
