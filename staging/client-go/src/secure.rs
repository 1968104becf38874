//! A component's secure port (upstream `SecureServingOptions` with
//! `DelegatingAuthenticationOptions` / `DelegatingAuthorizationOptions`): the flags, and
//! serving `/healthz`, `/livez`, `/readyz`, `/metrics` over HTTPS with authentication
//! (client certificates, a front proxy's headers, bearer tokens by TokenReview) and
//! authorization delegated to the apiserver.

use crate::delegated::DelegatedAuth;
use component_base::authentication::RequestHeader;
use component_base::serving::{Endpoints, RequestAuthorizer};
use component_base::x509_verify::ClientCaVerifier;
use rustls::pki_types::CertificateDer;
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
    /// If false, the authentication-kubeconfig will be used to lookup missing authentication configuration from the cluster.
    #[arg(long = "authentication-skip-lookup", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    pub authentication_skip_lookup: bool,
    /// If true, failures to look up missing authentication configuration from the cluster are not considered fatal. Note that this can result in authentication that treats all requests as anonymous.
    #[arg(long = "authentication-tolerate-lookup-failure", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = true)]
    pub authentication_tolerate_lookup_failure: bool,
    /// If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated with an identity corresponding to the CommonName of the client certificate.
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
    /// Root certificate bundle to use to verify client certificates on incoming requests before trusting usernames in headers specified by --requestheader-username-headers. WARNING: generally do not depend on authorization being already done for incoming requests.
    #[arg(long = "requestheader-client-ca-file")]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// List of client certificate common names to allow to provide usernames in headers specified by --requestheader-username-headers. If empty, any client certificate validated by the authorities in --requestheader-client-ca-file is allowed.
    #[arg(long = "requestheader-allowed-names", value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// List of request headers to inspect for usernames. X-Remote-User is common.
    #[arg(
        long = "requestheader-username-headers",
        value_delimiter = ',',
        default_value = "x-remote-user"
    )]
    pub requestheader_username_headers: Vec<String>,
    /// List of request headers to inspect for UIDs. X-Remote-Uid is suggested.
    #[arg(long = "requestheader-uid-headers", value_delimiter = ',')]
    pub requestheader_uid_headers: Vec<String>,
    /// List of request headers to inspect for groups. X-Remote-Group is suggested.
    #[arg(
        long = "requestheader-group-headers",
        value_delimiter = ',',
        default_value = "x-remote-group"
    )]
    pub requestheader_group_headers: Vec<String>,
    /// List of request header prefixes to inspect. X-Remote-Extra- is suggested.
    #[arg(
        long = "requestheader-extra-headers-prefix",
        value_delimiter = ',',
        default_value = "x-remote-extra-"
    )]
    pub requestheader_extra_headers_prefix: Vec<String>,
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

/// A front proxy's CA and header names.
struct RequestHeaderTrust {
    roots: Vec<CertificateDer<'static>>,
    allowed_names: Vec<String>,
    username_headers: Vec<String>,
    uid_headers: Vec<String>,
    group_headers: Vec<String>,
    extra_headers_prefix: Vec<String>,
}

/// Whom client certificates may come from.
#[derive(Default)]
struct ClientTrust {
    client_ca: Option<Vec<CertificateDer<'static>>>,
    request_header: Option<RequestHeaderTrust>,
}

/// The certificates of a PEM bundle (`what` names it in errors).
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("parsing {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {what}"));
    }
    Ok(certs)
}

fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    certificates(&pem, &path.display().to_string())
}

/// The authentication ConfigMap the apiserver publishes.
const AUTHENTICATION_CONFIG_MAP: &str = "extension-apiserver-authentication";

/// A JSON list stored as one ConfigMap value (how the apiserver writes them).
fn json_list(data: &std::collections::BTreeMap<String, String>, key: &str) -> Vec<String> {
    data.get(key)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

impl SecureServingFlags {
    /// The client CAs and front-proxy settings: the flags, and what they leave out looked
    /// up in `kube-system/extension-apiserver-authentication` through the
    /// authentication kubeconfig (upstream `lookupMissingConfigInCluster`).
    async fn client_trust(&self, authn: Option<&kube::Client>) -> Result<ClientTrust, String> {
        let mut trust = ClientTrust::default();
        if let Some(f) = &self.client_ca_file {
            trust.client_ca = Some(read_certificates(f)?);
        }
        if let Some(f) = &self.requestheader_client_ca_file {
            trust.request_header = Some(RequestHeaderTrust {
                roots: read_certificates(f)?,
                allowed_names: self.requestheader_allowed_names.clone(),
                username_headers: self.requestheader_username_headers.clone(),
                uid_headers: self.requestheader_uid_headers.clone(),
                group_headers: self.requestheader_group_headers.clone(),
                extra_headers_prefix: self.requestheader_extra_headers_prefix.clone(),
            });
        }
        let complete = trust.client_ca.is_some() && trust.request_header.is_some();
        let Some(client) = authn.filter(|_| !self.authentication_skip_lookup && !complete) else {
            return Ok(trust);
        };
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client.clone(), "kube-system");
        let data = match api.get(AUTHENTICATION_CONFIG_MAP).await {
            Ok(cm) => cm.data.unwrap_or_default(),
            Err(e) if self.authentication_tolerate_lookup_failure => {
                tracing::warn!(
                    error = %e,
                    "Error looking up in-cluster authentication configuration; continuing without it. This may treat all requests as anonymous."
                );
                return Ok(trust);
            }
            Err(e) => {
                return Err(format!(
                    "unable to load configmap based request-header-client-ca-file: {e}; usually fixed by 'kubectl create rolebinding -n kube-system ROLEBINDING_NAME --role=extension-apiserver-authentication-reader --serviceaccount=YOUR_NS:YOUR_SA'"
                ));
            }
        };
        if trust.client_ca.is_none()
            && let Some(pem) = data.get("client-ca-file")
        {
            trust.client_ca = Some(certificates(pem.as_bytes(), "client-ca-file")?);
        }
        if trust.request_header.is_none()
            && let Some(pem) = data.get("requestheader-client-ca-file")
        {
            trust.request_header = Some(RequestHeaderTrust {
                roots: certificates(pem.as_bytes(), "requestheader-client-ca-file")?,
                allowed_names: json_list(&data, "requestheader-allowed-names"),
                username_headers: json_list(&data, "requestheader-username-headers"),
                uid_headers: json_list(&data, "requestheader-uid-headers"),
                group_headers: json_list(&data, "requestheader-group-headers"),
                extra_headers_prefix: json_list(&data, "requestheader-extra-headers-prefix"),
            });
        }
        Ok(trust)
    }

    /// Serves `endpoints` (their authorizer set to the delegated one) on the secure port
    /// (`default_port` unless `--secure-port` says otherwise; 0 disables) until `stop`
    /// resolves. Fails at once when the port cannot be bound.
    pub async fn serve(
        &self,
        default_port: u16,
        cert_base: &str,
        agent: &str,
        mut endpoints: Endpoints,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let port = self.secure_port.unwrap_or(default_port);
        if port == 0 {
            return Ok(());
        }
        let authentication =
            delegate(&self.authentication_kubeconfig, "authentication", agent).await?;
        let trust = self.client_trust(authentication.as_ref()).await?;
        let mut auth = DelegatedAuth::new(
            authentication,
            delegate(&self.authorization_kubeconfig, "authorization", agent).await?,
            self.authorization_always_allow_paths.clone(),
        );
        let mut client_roots = Vec::new();
        if let Some(roots) = &trust.client_ca {
            auth.client_ca = Some(ClientCaVerifier::new(roots)?);
            client_roots.extend(roots.iter().cloned());
        }
        if let Some(rh) = trust.request_header {
            auth.request_header = Some(RequestHeader {
                verifier: Arc::new(ClientCaVerifier::new(&rh.roots)?),
                allowed_names: rh.allowed_names,
                username_headers: rh.username_headers,
                uid_headers: rh.uid_headers,
                group_headers: rh.group_headers,
                extra_headers_prefix: rh.extra_headers_prefix,
            });
            client_roots.extend(rh.roots);
        }
        let authorizer: Arc<dyn RequestAuthorizer> = Arc::new(auth);
        endpoints.authorizer = Some(authorizer);
        let tls = component_base::serving::tls_config(
            self.tls_cert_file.as_deref(),
            self.tls_private_key_file.as_deref(),
            &self.cert_dir,
            cert_base,
            &client_roots,
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
