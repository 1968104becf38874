//! The apiserver's resolved configuration (flags are parsed in `cmd/kube-apiserver`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub etcd_servers: Vec<String>,
    pub etcd_prefix: String,
    /// `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`: TLS to etcd.
    pub etcd_cafile: Option<PathBuf>,
    pub etcd_certfile: Option<PathBuf>,
    pub etcd_keyfile: Option<PathBuf>,
    pub etcd_compaction_interval: Duration,
    /// `--storage-media-type=application/vnd.kubernetes.protobuf`: built-in objects are
    /// written as protobuf (custom resources stay JSON); either form is read.
    pub storage_protobuf: bool,
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub secure_port: u16,
    pub advertise_address: Option<IpAddr>,
    pub cert_dir: PathBuf,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub service_cluster_ip_range: String,
    pub service_node_port_range: String,
    pub watch_cache: bool,
    pub default_watch_cache_size: usize,
    /// `--max-requests-inflight` / `--max-mutating-requests-inflight` (0 = no limit).
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
    /// `--enable-priority-and-fairness`: APF shares the two limits' sum among priority
    /// levels instead of applying them directly.
    pub enable_priority_and_fairness: bool,
    pub client_ca_file: Option<PathBuf>,
    pub token_auth_file: Option<PathBuf>,
    pub request_header: RequestHeaderConfig,
    pub anonymous_auth: bool,
    /// `--endpoint-reconciler-type`: "lease" or "none" ("" is lease).
    pub endpoint_reconciler_type: String,
    /// `--enable-bootstrap-token-auth`: bootstrap token Secrets authenticate.
    pub enable_bootstrap_token_auth: bool,
    /// `--authorization-mode`, in order (AlwaysAllow, AlwaysDeny, RBAC).
    pub authorization_modes: Vec<String>,
    /// `--enable-admission-plugins` / `--disable-admission-plugins`.
    pub enable_admission_plugins: Vec<String>,
    pub disable_admission_plugins: Vec<String>,
    /// `--encryption-provider-config`.
    pub encryption_provider_config: Option<PathBuf>,
    /// `--audit-policy-file`, `--audit-log-path` and the rotation flags.
    pub audit_policy_file: Option<PathBuf>,
    pub audit_log_path: Option<PathBuf>,
    pub audit_log_rotation: apiserver::audit::log::Rotation,
    /// `--service-account-issuer` (the first issues; all are accepted).
    pub service_account_issuers: Vec<String>,
    /// `--service-account-key-file` (verification keys; default: the signing key's).
    pub service_account_key_files: Vec<PathBuf>,
    /// `--service-account-signing-key-file` (default: generated in `--cert-dir`).
    pub service_account_signing_key_file: Option<PathBuf>,
    /// `--api-audiences` (default: the issuer).
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration` (zero: no limit).
    pub service_account_max_token_expiration: Duration,
    pub service_account_extend_token_expiration: bool,
    /// `--allow-privileged`: containers may ask for `securityContext.privileged`.
    pub allow_privileged: bool,
    /// `--kubelet-preferred-address-types`.
    pub kubelet_preferred_address_types: Vec<String>,
    /// `--kubelet-client-certificate` / `--kubelet-client-key` (given together).
    pub kubelet_client_certificate: Option<(PathBuf, PathBuf)>,
    /// `--kubelet-certificate-authority`.
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// `--proxy-client-cert-file` / `--proxy-client-key-file` (given together): the
    /// aggregator's identity towards extension API servers.
    pub proxy_client_certificate: Option<(PathBuf, PathBuf)>,
    /// `--enable-aggregator-routing`: reach extension API servers through their
    /// endpoints rather than their cluster IP.
    pub enable_aggregator_routing: bool,
}

/// The API aggregator's settings.
pub fn aggregator(cfg: &Config) -> Result<kube_aggregator::Aggregator, String> {
    let proxy_client = match &cfg.proxy_client_certificate {
        Some((c, k)) => Some(kube_aggregator::proxy::ProxyClientCert::load(c, k)?),
        None => None,
    };
    Ok(kube_aggregator::Aggregator::new(kube_aggregator::Config {
        routing: match cfg.enable_aggregator_routing {
            true => kube_aggregator::resolver::Routing::Endpoint,
            false => kube_aggregator::resolver::Routing::ClusterIp,
        },
        proxy_client,
        priorities: crate::resources::API_VERSION_PRIORITIES,
    }))
}

/// How this server reaches kubelets (logs, exec, attach, port-forward, node proxy).
pub fn kubelet_client(cfg: &Config) -> Result<registry::core::pod::connect::KubeletClient, String> {
    let client = cfg
        .kubelet_client_certificate
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    Ok(registry::core::pod::connect::KubeletClient {
        tls: apiserver::proxy::kubelet_tls(client, cfg.kubelet_certificate_authority.as_deref())?,
        preferred_address_types: cfg.kubelet_preferred_address_types.clone(),
    })
}

/// `--requestheader-*`: front proxies authenticating users for us.
#[derive(Clone, Debug, Default)]
pub struct RequestHeaderConfig {
    pub client_ca_file: Option<PathBuf>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

/// Certificate-based authentication: the `--client-ca-file` verifier, the front-proxy
/// authenticator, and every root the TLS handshake must accept client certificates from.
pub struct ClientCertAuth {
    pub client_ca: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    pub request_header: Option<apiserver::authentication::request_header::RequestHeader>,
    pub roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

pub fn client_cert_auth(cfg: &Config) -> Result<ClientCertAuth, String> {
    use apiserver::server::tls::{client_verifier, load_roots};
    let mut auth = ClientCertAuth {
        client_ca: None,
        request_header: None,
        roots: Vec::new(),
    };
    if let Some(ca) = &cfg.client_ca_file {
        let roots = load_roots(ca)?;
        auth.client_ca = Some(client_verifier(&roots)?);
        auth.roots.extend(roots);
    }
    let rh = &cfg.request_header;
    if let Some(ca) = &rh.client_ca_file {
        if rh.username_headers.iter().all(String::is_empty) {
            return Err(
                "--requestheader-username-headers must be set with --requestheader-client-ca-file"
                    .into(),
            );
        }
        let list = |v: &Vec<String>| -> Vec<String> {
            v.iter().filter(|s| !s.is_empty()).cloned().collect()
        };
        let roots = load_roots(ca)?;
        auth.request_header = Some(apiserver::authentication::request_header::RequestHeader {
            verifier: client_verifier(&roots)?,
            allowed_names: list(&rh.allowed_names),
            username_headers: list(&rh.username_headers),
            uid_headers: list(&rh.uid_headers),
            group_headers: list(&rh.group_headers),
            extra_headers_prefix: list(&rh.extra_headers_prefix),
        });
        auth.roots.extend(roots);
    }
    Ok(auth)
}

/// Upstream's (kubeadm's) default issuer.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The token issuer and the keys tokens are verified with.
pub fn service_accounts(
    cfg: &Config,
) -> Result<
    (
        Arc<apiserver::authentication::serviceaccount::TokenIssuer>,
        Vec<apiserver::authentication::jwt::PublicKey>,
    ),
    String,
> {
    use apiserver::authentication::jwt::{Signer, load_public_keys};
    let signer = match &cfg.service_account_signing_key_file {
        Some(path) => Signer::load(path)?,
        None => {
            let path = cfg.cert_dir.join("service-account.key");
            if path.exists() {
                Signer::load(&path)?
            } else {
                tracing::info!(path = %path.display(), "generating a service account signing key");
                Signer::generate(&path)?
            }
        }
    };
    let mut keys = Vec::new();
    for f in &cfg.service_account_key_files {
        keys.extend(load_public_keys(f)?);
    }
    if keys.is_empty() {
        keys.push(signer.public_key());
    }
    let issuer = cfg
        .service_account_issuers
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
    let audiences = if cfg.api_audiences.is_empty() {
        vec![issuer.clone()]
    } else {
        cfg.api_audiences.clone()
    };
    Ok((
        Arc::new(apiserver::authentication::serviceaccount::TokenIssuer {
            issuer,
            signer,
            audiences,
            max_expiration: cfg.service_account_max_token_expiration.as_secs() as i64,
            extend_expiration: cfg.service_account_extend_token_expiration,
        }),
        keys,
    ))
}

/// The auditor the audit flags ask for: both a policy and a log path, as upstream
/// (a policy alone audits nothing).
pub fn auditor(cfg: &Config) -> Result<Option<Arc<apiserver::audit::Auditor>>, String> {
    let (Some(policy), Some(path)) = (&cfg.audit_policy_file, &cfg.audit_log_path) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(apiserver::audit::Auditor {
        policy: apiserver::audit::policy::Policy::load(policy)?,
        backend: apiserver::audit::log::LogBackend::new(
            path.clone(),
            cfg.audit_log_rotation.clone(),
        )?,
    })))
}

impl Config {
    /// The address clients (and the `kubernetes` Endpoints) use to reach this server.
    pub fn advertise_ip(&self) -> IpAddr {
        match self.advertise_address {
            Some(a) => a,
            None if self.bind_address.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            None => self.bind_address,
        }
    }
}

/// Serving TLS: the given pair, or a self-signed one kept in `--cert-dir`.
pub fn serving_tls(
    cfg: &Config,
    client_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let (crt, key) = match (&cfg.tls_cert_file, &cfg.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "kubernetes".into(),
                "kubernetes.default".into(),
                "kubernetes.default.svc".into(),
                "kubernetes.default.svc.cluster.local".into(),
            ];
            let adv = cfg.advertise_ip().to_string();
            if !names.contains(&adv) {
                names.push(adv);
            }
            if let Ok(cidr) =
                registry::core::service::ipallocator::Cidr::parse(&cfg.service_cluster_ip_range)
            {
                names.push(cidr.nth(1).to_string());
            }
            apiserver::server::tls::ensure_self_signed(&cfg.cert_dir, "apiserver", &names)?
        }
        _ => {
            return Err("--tls-cert-file and --tls-private-key-file must be given together".into());
        }
    };
    apiserver::server::tls::server_config(&crt, &key, client_roots)
}
