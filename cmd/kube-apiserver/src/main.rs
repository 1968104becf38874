//! kube-apiserver: upstream's flags, mapped onto `controlplane::Config`.

use clap::Parser;
use component_base::logs::LoggingOptions;
use controlplane::config::Config;
use std::net::IpAddr;
use std::path::PathBuf;

/// The Kubernetes API server validates and configures data for the api objects which
/// include pods, services, replicationcontrollers, and others. The API Server services
/// REST operations and provides the frontend to the cluster's shared state through which
/// all other components interact.
#[derive(Parser, Debug)]
#[command(name = "kube-apiserver", version = "v1.35.0")]
struct Flags {
    /// List of etcd servers to connect with (scheme://ip:port), comma separated. Without it the embedded store under --data-dir is used.
    #[arg(long = "etcd-servers", value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long = "etcd-cafile")]
    etcd_cafile: Option<PathBuf>,
    /// SSL certification file used to secure etcd communication.
    #[arg(long = "etcd-certfile")]
    etcd_certfile: Option<PathBuf>,
    /// SSL key file used to secure etcd communication.
    #[arg(long = "etcd-keyfile")]
    etcd_keyfile: Option<PathBuf>,
    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    etcd_prefix: String,
    /// The media type to use to store objects in storage: application/json or
    /// application/vnd.kubernetes.protobuf (upstream's default; custom resources are
    /// always JSON). Objects in either form are read.
    #[arg(long = "storage-media-type", default_value = "application/json")]
    storage_media_type: String,
    /// The interval of compaction requests. If 0, the compaction request from apiserver is disabled.
    #[arg(long = "etcd-compaction-interval", default_value = "5m0s")]
    etcd_compaction_interval: String,
    /// Directory of the embedded store (used when --etcd-servers is not set).
    #[arg(long = "data-dir", default_value = "/var/lib/kube-apiserver")]
    data_dir: PathBuf,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long = "secure-port", default_value_t = 6443)]
    secure_port: u16,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long = "advertise-address")]
    advertise_address: Option<IpAddr>,
    /// The directory where the TLS certs are located. Ignored if --tls-cert-file and --tls-private-key-file are provided.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    cert_dir: PathBuf,
    /// File containing the default x509 Certificate for HTTPS.
    #[arg(long = "tls-cert-file")]
    tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    tls_private_key_file: Option<PathBuf>,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    service_cluster_ip_range: String,
    /// A port range to reserve for services with NodePort visibility.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    service_node_port_range: String,
    /// Enable watch caching in the apiserver.
    #[arg(long = "watch-cache", default_value_t = true, action = clap::ArgAction::Set)]
    watch_cache: bool,
    /// Default watch cache size (minimum number of recent events kept per resource).
    #[arg(long = "default-watch-cache-size", default_value_t = 100)]
    default_watch_cache_size: usize,
    /// Enables anonymous requests to the secure port: requests not rejected by another
    /// authentication method are treated as system:anonymous (group system:unauthenticated).
    #[arg(long = "anonymous-auth", default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Use an endpoint reconciler (lease, none).
    #[arg(long = "endpoint-reconciler-type", default_value = "lease")]
    endpoint_reconciler_type: String,
    /// Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the
    /// 'kube-system' namespace to be used for TLS bootstrapping authentication.
    #[arg(long = "enable-bootstrap-token-auth", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_bootstrap_token_auth: bool,
    /// A bundle of CA certificates; a client certificate signed by one of them
    /// authenticates as its CommonName, with its Organizations as groups.
    #[arg(long = "client-ca-file")]
    client_ca_file: Option<PathBuf>,
    /// Root certificates to verify the client certificates of front proxies with
    /// before trusting the user names in --requestheader-username-headers.
    #[arg(long = "requestheader-client-ca-file")]
    requestheader_client_ca_file: Option<PathBuf>,
    /// Client certificate common names allowed to name users in headers; empty: any
    /// certificate signed by --requestheader-client-ca-file.
    #[arg(long = "requestheader-allowed-names", value_delimiter = ',')]
    requestheader_allowed_names: Vec<String>,
    /// Request headers to inspect for the user name (X-Remote-User is common).
    #[arg(long = "requestheader-username-headers", value_delimiter = ',')]
    requestheader_username_headers: Vec<String>,
    /// Request headers to inspect for the user's UID (X-Remote-Uid is suggested).
    #[arg(long = "requestheader-uid-headers", value_delimiter = ',')]
    requestheader_uid_headers: Vec<String>,
    /// Request headers to inspect for groups (X-Remote-Group is suggested).
    #[arg(long = "requestheader-group-headers", value_delimiter = ',')]
    requestheader_group_headers: Vec<String>,
    /// Request header prefixes to inspect for extra user info (X-Remote-Extra- is
    /// suggested).
    #[arg(long = "requestheader-extra-headers-prefix", value_delimiter = ',')]
    requestheader_extra_headers_prefix: Vec<String>,
    /// A CSV file of bearer tokens: token,user,uid[,"group1,group2"].
    #[arg(long = "token-auth-file")]
    token_auth_file: Option<PathBuf>,
    /// Ordered list of plug-ins to do authorization on secure port: AlwaysAllow,
    /// AlwaysDeny, Node, RBAC.
    #[arg(long = "authorization-mode", default_value = "AlwaysAllow")]
    authorization_mode: String,
    /// Admission plugins to enable in addition to the default ones.
    #[arg(long = "enable-admission-plugins", default_value = "")]
    enable_admission_plugins: String,
    /// Admission plugins to disable.
    #[arg(long = "disable-admission-plugins", default_value = "")]
    disable_admission_plugins: String,
    /// The file with the configuration for encryption providers used to store secrets
    /// (and other resources) in etcd.
    #[arg(long = "encryption-provider-config")]
    encryption_provider_config: Option<PathBuf>,
    /// Path to the file that defines the audit policy configuration.
    #[arg(long = "audit-policy-file")]
    audit_policy_file: Option<PathBuf>,
    /// If set, all requests coming to the apiserver will be logged to this file. '-'
    /// means standard out.
    #[arg(long = "audit-log-path")]
    audit_log_path: Option<PathBuf>,
    /// The maximum number of days to retain old audit log files.
    #[arg(long = "audit-log-maxage", default_value_t = 0)]
    audit_log_maxage: u64,
    /// The maximum number of old audit log files to retain.
    #[arg(long = "audit-log-maxbackup", default_value_t = 0)]
    audit_log_maxbackup: usize,
    /// The maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long = "audit-log-maxsize", default_value_t = 0)]
    audit_log_maxsize: u64,
    /// Format of saved audits ("json").
    #[arg(long = "audit-log-format", default_value = "json")]
    audit_log_format: String,
    /// Identifier of the service account token issuer; repeat to also accept tokens of
    /// earlier issuers (the first one issues).
    #[arg(long = "service-account-issuer")]
    service_account_issuer: Vec<String>,
    /// PEM files of keys (public, private, or certificates) that verify service account
    /// tokens. Defaults to the signing key.
    #[arg(long = "service-account-key-file")]
    service_account_key_file: Vec<PathBuf>,
    /// The private key (PEM) that signs service account tokens; generated in --cert-dir
    /// when not given.
    #[arg(long = "service-account-signing-key-file")]
    service_account_signing_key_file: Option<PathBuf>,
    /// Identifiers of the API; tokens must be issued for one of them. Defaults to the
    /// issuer.
    #[arg(long = "api-audiences", value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// The maximum validity duration of a token created by the service account token
    /// issuer (e.g. 24h); 0 means no limit.
    #[arg(long = "service-account-max-token-expiration", default_value = "0s")]
    service_account_max_token_expiration: String,
    /// Turns on projected service account expiration extension during token generation.
    #[arg(long = "service-account-extend-token-expiration", default_value_t = true, action = clap::ArgAction::Set)]
    service_account_extend_token_expiration: bool,
    /// Path to a client cert file for TLS (the apiserver's identity towards kubelets).
    #[arg(long = "kubelet-client-certificate")]
    kubelet_client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long = "kubelet-client-key")]
    kubelet_client_key: Option<PathBuf>,
    /// Client certificate used to prove the identity of the aggregator or kube-apiserver
    /// when it must call out during a request (proxying to extension API servers).
    #[arg(long = "proxy-client-cert-file")]
    proxy_client_cert_file: Option<PathBuf>,
    /// Private key for the client certificate used to prove the identity of the
    /// aggregator or kube-apiserver when it must call out during a request.
    #[arg(long = "proxy-client-key-file")]
    proxy_client_key_file: Option<PathBuf>,
    /// Turns on aggregator routing requests to endpoints IP rather than cluster IP.
    #[arg(long = "enable-aggregator-routing", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_aggregator_routing: bool,
    /// Path to a cert file for the certificate authority of kubelets' serving certificates.
    #[arg(long = "kubelet-certificate-authority")]
    kubelet_certificate_authority: Option<PathBuf>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(
        long = "kubelet-preferred-address-types",
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    kubelet_preferred_address_types: Vec<String>,
    /// If true, allow privileged containers.
    #[arg(long = "allow-privileged", default_value_t = false, action = clap::ArgAction::Set)]
    allow_privileged: bool,
    /// If true, replace the max-in-flight handler with an enhanced one that queues and
    /// dispatches with priority and fairness.
    #[arg(long = "enable-priority-and-fairness", default_value_t = true, action = clap::ArgAction::Set)]
    enable_priority_and_fairness: bool,
    /// The maximum number of non-mutating requests in flight at a given time.
    #[arg(long = "max-requests-inflight", default_value_t = 400)]
    max_requests_inflight: u32,
    /// The maximum number of mutating requests in flight at a given time.
    #[arg(long = "max-mutating-requests-inflight", default_value_t = 200)]
    max_mutating_requests_inflight: u32,
    #[command(flatten)]
    logging: LoggingOptions,
}

/// A certificate and its key: both flags or neither (exits naming them otherwise).
fn given_together(
    (cert_flag, cert): (&str, Option<PathBuf>),
    (key_flag, key): (&str, Option<PathBuf>),
) -> Option<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            eprintln!("Error: --{cert_flag} and --{key_flag} must be given together");
            std::process::exit(1);
        }
    }
}

fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let interval = match apimachinery::duration::parse(&flags.etcd_compaction_interval) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "Error: invalid argument {:?} for \"--etcd-compaction-interval\" flag: {e}",
                flags.etcd_compaction_interval
            );
            std::process::exit(1);
        }
    };
    let max_token = match apimachinery::duration::parse(&flags.service_account_max_token_expiration)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "Error: invalid argument {:?} for \"--service-account-max-token-expiration\" flag: {e}",
                flags.service_account_max_token_expiration
            );
            std::process::exit(1);
        }
    };
    let storage_protobuf = match flags.storage_media_type.as_str() {
        "application/json" => false,
        "application/vnd.kubernetes.protobuf" => true,
        other => {
            eprintln!(
                "Error: invalid argument {other:?} for \"--storage-media-type\" flag: must be application/json or application/vnd.kubernetes.protobuf"
            );
            std::process::exit(1);
        }
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect()
    };
    let authorization_modes = list(&flags.authorization_mode);
    let reconciler = match flags.endpoint_reconciler_type.as_str() {
        t @ ("lease" | "none") => t.to_string(),
        other => {
            eprintln!(
                "Error: invalid argument {other:?} for \"--endpoint-reconciler-type\" flag: must be lease or none (master-count is not supported)"
            );
            std::process::exit(1);
        }
    };
    let kubelet_client_certificate = given_together(
        (
            "kubelet-client-certificate",
            flags.kubelet_client_certificate.clone(),
        ),
        ("kubelet-client-key", flags.kubelet_client_key.clone()),
    );
    let proxy_client_certificate = given_together(
        (
            "proxy-client-cert-file",
            flags.proxy_client_cert_file.clone(),
        ),
        ("proxy-client-key-file", flags.proxy_client_key_file.clone()),
    );
    let cfg = Config {
        etcd_servers: flags
            .etcd_servers
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        etcd_prefix: flags.etcd_prefix,
        etcd_cafile: flags.etcd_cafile,
        etcd_certfile: flags.etcd_certfile,
        etcd_keyfile: flags.etcd_keyfile,
        etcd_compaction_interval: interval,
        storage_protobuf,
        data_dir: flags.data_dir,
        bind_address: flags.bind_address,
        secure_port: flags.secure_port,
        advertise_address: flags.advertise_address,
        cert_dir: flags.cert_dir,
        tls_cert_file: flags.tls_cert_file,
        tls_private_key_file: flags.tls_private_key_file,
        service_cluster_ip_range: flags.service_cluster_ip_range,
        service_node_port_range: flags.service_node_port_range,
        watch_cache: flags.watch_cache,
        default_watch_cache_size: flags.default_watch_cache_size,
        max_requests_inflight: flags.max_requests_inflight as usize,
        max_mutating_requests_inflight: flags.max_mutating_requests_inflight as usize,
        enable_priority_and_fairness: flags.enable_priority_and_fairness,
        client_ca_file: flags.client_ca_file,
        token_auth_file: flags.token_auth_file,
        request_header: controlplane::config::RequestHeaderConfig {
            client_ca_file: flags.requestheader_client_ca_file,
            allowed_names: flags.requestheader_allowed_names,
            username_headers: flags.requestheader_username_headers,
            uid_headers: flags.requestheader_uid_headers,
            group_headers: flags.requestheader_group_headers,
            extra_headers_prefix: flags.requestheader_extra_headers_prefix,
        },
        anonymous_auth: flags.anonymous_auth,
        enable_bootstrap_token_auth: flags.enable_bootstrap_token_auth,
        endpoint_reconciler_type: reconciler,
        authorization_modes,
        enable_admission_plugins: list(&flags.enable_admission_plugins),
        disable_admission_plugins: list(&flags.disable_admission_plugins),
        encryption_provider_config: flags.encryption_provider_config,
        audit_policy_file: flags.audit_policy_file,
        audit_log_path: flags.audit_log_path,
        service_account_issuers: flags.service_account_issuer,
        service_account_key_files: flags.service_account_key_file,
        service_account_signing_key_file: flags.service_account_signing_key_file,
        api_audiences: flags.api_audiences,
        service_account_max_token_expiration: max_token,
        service_account_extend_token_expiration: flags.service_account_extend_token_expiration,
        audit_log_rotation: apiserver::audit::log::Rotation {
            max_size_mb: flags.audit_log_maxsize,
            max_backups: flags.audit_log_maxbackup,
            max_age_days: flags.audit_log_maxage,
        },
        allow_privileged: flags.allow_privileged,
        kubelet_preferred_address_types: flags.kubelet_preferred_address_types.clone(),
        kubelet_client_certificate,
        kubelet_certificate_authority: flags.kubelet_certificate_authority.clone(),
        proxy_client_certificate,
        enable_aggregator_routing: flags.enable_aggregator_routing,
    };
    if flags.audit_log_format != "json" {
        eprintln!(
            "Error: invalid argument {:?} for \"--audit-log-format\" flag: only \"json\" is supported",
            flags.audit_log_format
        );
        std::process::exit(1);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(controlplane::run(
        cfg,
        component_base::signals::shutdown_signal(),
    )) {
        tracing::error!(error = %e, "kube-apiserver failed");
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
