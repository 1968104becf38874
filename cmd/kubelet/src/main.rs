//! kubelet: upstream's flags and `--config` file (`KubeletConfiguration`; flags given on
//! the command line win, as upstream), then the kubelet until SIGTERM.

use clap::Parser;
use component_base::logs::LoggingOptions;
use kubelet::apis::config::KubeletConfiguration;
use std::path::PathBuf;

/// The kubelet is the primary "node agent" that runs on each node. It can register the
/// node with the apiserver using one of: the hostname; a flag to override the hostname;
/// or specific logic for a cloud provider.
#[derive(Parser, Debug)]
#[command(name = "kubelet", version = "v1.35.0")]
struct Flags {
    /// The Kubelet will load its initial configuration from this file.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// Path to a kubeconfig file, specifying how to connect to the API server.
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// Path to a kubeconfig file that will be used to get client certificate for
    /// kubelet. If the file specified by --kubeconfig does not exist, the bootstrap
    /// kubeconfig is used to request a client certificate from the API server. On
    /// success, a kubeconfig file referencing the generated client certificate and key
    /// is written to the path specified by --kubeconfig.
    #[arg(long = "bootstrap-kubeconfig")]
    bootstrap_kubeconfig: Option<PathBuf>,
    /// The directory where the TLS certs are located. If --tls-cert-file and
    /// --tls-private-key-file are provided, this flag will be ignored for serving. Default:
    /// <root-dir>/pki (/var/lib/kubelet/pki).
    #[arg(long = "cert-dir")]
    cert_dir: Option<PathBuf>,
    /// Auto rotate the kubelet client certificates by requesting new certificates from
    /// the kube-apiserver when the certificate expiration approaches.
    #[arg(long = "rotate-certificates", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rotate_certificates: Option<bool>,
    /// Enable the use of RuntimeDefault as the default seccomp profile for all workloads.
    #[arg(long = "seccomp-default", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    seccomp_default: Option<bool>,
    /// Set the maximum size (e.g. 10Mi) of container log file before it is rotated.
    #[arg(long = "container-log-max-size")]
    container_log_max_size: Option<String>,
    /// Set the maximum number of container log files that can be present for a container. The number must be >= 2.
    #[arg(long = "container-log-max-files")]
    container_log_max_files: Option<i32>,
    /// Comma-separated allowlist of unsafe sysctls or unsafe sysctl patterns (ending in *). Use these at your own risk.
    #[arg(long = "allowed-unsafe-sysctls", value_delimiter = ',')]
    allowed_unsafe_sysctls: Option<Vec<String>>,
    /// The endpoint of remote runtime service (unix socket).
    #[arg(long = "container-runtime-endpoint")]
    container_runtime_endpoint: Option<String>,
    /// The endpoint of remote image service; defaults to --container-runtime-endpoint.
    #[arg(long = "image-service-endpoint")]
    image_service_endpoint: Option<String>,
    /// IP address (or comma-separated dual-stack IP addresses) of the node.
    #[arg(long = "node-ip")]
    node_ip: Option<String>,
    /// If non-empty, will use this string as identification instead of the actual hostname.
    #[arg(long = "hostname-override")]
    hostname_override: Option<String>,
    /// Directory path for managing kubelet files (volume mounts, etc).
    #[arg(long = "root-dir", default_value = "/var/lib/kubelet")]
    root_dir: PathBuf,
    /// Path to the directory containing static pod files to run (DEPRECATED: use staticPodPath in --config).
    #[arg(long = "pod-manifest-path")]
    pod_manifest_path: Option<String>,
    /// Number of Pods that can run on this Kubelet.
    #[arg(long = "max-pods")]
    max_pods: Option<i32>,
    /// The CIDR to use for pod IP addresses, only used in standalone mode.
    #[arg(long = "pod-cidr")]
    pod_cidr: Option<String>,
    /// Comma-separated list of DNS server IP addresses.
    #[arg(long = "cluster-dns", value_delimiter = ',')]
    cluster_dns: Option<Vec<String>>,
    /// Domain for this cluster.
    #[arg(long = "cluster-domain")]
    cluster_domain: Option<String>,
    /// Labels to add when registering the node in the cluster (key=value,...).
    #[arg(long = "node-labels", value_delimiter = ',')]
    node_labels: Vec<String>,
    /// Register the node with the apiserver.
    #[arg(long = "register-node", action = clap::ArgAction::Set)]
    register_node: Option<bool>,
    /// The IP address for the Kubelet to serve on.
    #[arg(long = "address")]
    address: Option<String>,
    /// The port for the Kubelet to serve on.
    #[arg(long = "port")]
    port: Option<u16>,
    /// The port of the localhost healthz endpoint (set to 0 to disable).
    #[arg(long = "healthz-port")]
    healthz_port: Option<u16>,
    /// The IP address for the healthz server to serve on.
    #[arg(long = "healthz-bind-address")]
    healthz_bind_address: Option<String>,
    /// Enables anonymous requests to the Kubelet server.
    #[arg(long = "anonymous-auth", action = clap::ArgAction::Set)]
    anonymous_auth: Option<bool>,
    /// Use the TokenReview API to determine authentication for bearer tokens.
    #[arg(long = "authentication-token-webhook", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    authentication_token_webhook: Option<bool>,
    /// Authorization mode for Kubelet server: AlwaysAllow or Webhook.
    #[arg(long = "authorization-mode")]
    authorization_mode: Option<String>,
    /// If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated.
    #[arg(long = "client-ca-file")]
    client_ca_file: Option<String>,
    /// File containing x509 Certificate used for serving HTTPS.
    #[arg(long = "tls-cert-file")]
    tls_cert_file: Option<PathBuf>,
    /// File containing x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    tls_private_key_file: Option<PathBuf>,
    /// Driver that the kubelet uses to manipulate cgroups on the host: cgroupfs or systemd.
    #[arg(long = "cgroup-driver")]
    cgroup_driver: Option<String>,
    /// Optional root cgroup to use for pods.
    #[arg(long = "cgroup-root")]
    cgroup_root: Option<String>,
    /// Enable creation of QoS cgroup hierarchy, if true top level QoS and pod cgroups are created.
    #[arg(long = "cgroups-per-qos", action = clap::ArgAction::Set)]
    cgroups_per_qos: Option<bool>,
    /// A comma separated list of levels of node allocatable enforcement: 'none', 'pods', 'system-reserved', 'kube-reserved'.
    #[arg(long = "enforce-node-allocatable", value_delimiter = ',')]
    enforce_node_allocatable: Option<Vec<String>>,
    /// Resources reserved for kubernetes system components (e.g. cpu=200m,memory=500Mi,pid=1000).
    #[arg(long = "kube-reserved")]
    kube_reserved: Option<String>,
    /// Resources reserved for non-kubernetes components (e.g. cpu=200m,memory=500Mi,pid=1000).
    #[arg(long = "system-reserved")]
    system_reserved: Option<String>,
    /// Set the maximum number of processes per pod. If -1, the kubelet defaults to the node allocatable pid capacity.
    #[arg(long = "pod-max-pids", allow_hyphen_values = true)]
    pod_max_pids: Option<i64>,
    /// Prevent the kubelet from starting on hosts with cgroup v1 (default true).
    #[arg(long = "fail-cgroupv1", action = clap::ArgAction::Set)]
    fail_cgroupv1: Option<bool>,
    /// Makes the Kubelet fail to start if swap is enabled on the node.
    #[arg(long = "fail-swap-on", action = clap::ArgAction::Set)]
    fail_swap_on: Option<bool>,
    /// Timeout of all runtime requests except long running requests.
    #[arg(long = "runtime-request-timeout")]
    runtime_request_timeout: Option<String>,
    /// How often the kubelet posts node status to master.
    #[arg(long = "node-status-update-frequency")]
    node_status_update_frequency: Option<String>,
    /// Specifies interval for kubelet to calculate and cache the volume disk usage for all pods and volumes.  To disable volume calculations, set to a negative number.
    #[arg(long = "volume-stats-agg-period", allow_hyphen_values = true)]
    volume_stats_agg_period: Option<String>,
    /// A set of eviction thresholds (e.g. memory.available<1Gi) that if met would trigger a pod eviction.
    #[arg(long = "eviction-hard")]
    eviction_hard: Option<String>,
    /// Max period between synchronizing running containers and config.
    #[arg(long = "sync-frequency")]
    sync_frequency: Option<String>,
    /// Duration between checking config files for new data.
    #[arg(long = "file-check-frequency")]
    file_check_frequency: Option<String>,
    /// Directory for pod logs (podLogsDir).
    #[arg(long = "pod-logs-dir", hide = true)]
    pod_logs_dir: Option<String>,
    /// Not upstream: run an in-process fake CRI runtime (kubemark's hollow node: no
    /// processes, no network) on <root-dir>/fake-cri.sock, for scale tests.
    #[arg(long = "fake-container-runtime", default_value_t = false)]
    fake_container_runtime: bool,
    #[command(flatten)]
    logging: LoggingOptions,
}

fn configuration(f: &Flags) -> Result<KubeletConfiguration, String> {
    let mut c = match &f.config {
        Some(p) => KubeletConfiguration::load(p)?,
        None => {
            // Upstream's flag defaults differ from the file's for the server's auth.
            let mut c = KubeletConfiguration::default();
            c.authentication.anonymous.enabled = true;
            c.authentication.webhook.enabled = false;
            c.authorization.mode = "AlwaysAllow".into();
            c
        }
    };
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = $flag.clone() {
                $field = v;
            }
        };
    }
    set!(f.container_runtime_endpoint, c.container_runtime_endpoint);
    set!(f.image_service_endpoint, c.image_service_endpoint);
    set!(f.pod_manifest_path, c.static_pod_path);
    set!(f.max_pods, c.max_pods);
    set!(f.pod_cidr, c.pod_cidr);
    set!(f.cluster_dns, c.cluster_dns);
    set!(f.cluster_domain, c.cluster_domain);
    set!(f.register_node, c.register_node);
    set!(f.address, c.address);
    set!(f.port, c.port);
    set!(f.healthz_port, c.healthz_port);
    set!(f.healthz_bind_address, c.healthz_bind_address);
    set!(f.anonymous_auth, c.authentication.anonymous.enabled);
    set!(f.authorization_mode, c.authorization.mode);
    set!(
        f.authentication_token_webhook,
        c.authentication.webhook.enabled
    );
    set!(f.client_ca_file, c.authentication.x509.client_ca_file);
    set!(f.cgroup_driver, c.cgroup_driver);
    set!(f.fail_swap_on, c.fail_swap_on);
    set!(f.cgroup_root, c.cgroup_root);
    set!(f.fail_cgroupv1, c.fail_cgroup_v1);
    set!(f.cgroups_per_qos, c.cgroups_per_qos);
    set!(f.enforce_node_allocatable, c.enforce_node_allocatable);
    set!(f.pod_max_pids, c.pod_pids_limit);
    for (flag, field) in [
        (&f.kube_reserved, &mut c.kube_reserved),
        (&f.system_reserved, &mut c.system_reserved),
    ] {
        if let Some(v) = flag {
            *field = reservation(v)?;
        }
    }
    set!(f.runtime_request_timeout, c.runtime_request_timeout);
    set!(
        f.node_status_update_frequency,
        c.node_status_update_frequency
    );
    set!(f.volume_stats_agg_period, c.volume_stats_agg_period);
    set!(f.pod_logs_dir, c.pod_logs_dir);
    set!(f.sync_frequency, c.sync_frequency);
    set!(f.rotate_certificates, c.rotate_certificates);
    set!(f.seccomp_default, c.seccomp_default);
    set!(f.container_log_max_size, c.container_log_max_size);
    set!(f.container_log_max_files, c.container_log_max_files);
    set!(f.allowed_unsafe_sysctls, c.allowed_unsafe_sysctls);
    if let Some(e) = &f.eviction_hard {
        c.eviction_hard = kubelet::eviction::parse_flag(e)?;
    }
    set!(f.file_check_frequency, c.file_check_frequency);
    if let Some(p) = &f.tls_cert_file {
        c.tls_cert_file = p.display().to_string();
    }
    if let Some(p) = &f.tls_private_key_file {
        c.tls_private_key_file = p.display().to_string();
    }
    if !matches!(c.authorization.mode.as_str(), "AlwaysAllow" | "Webhook") {
        return Err(format!(
            "invalid configuration: authorization.mode {:?}: must be AlwaysAllow or Webhook",
            c.authorization.mode
        ));
    }
    c.validate()?;
    // Upstream refuses to run with swap on unless told it may.
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let active: Vec<&str> = swaps
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if c.fail_swap_on && !active.is_empty() {
        return Err(format!(
            "running with swap on is not supported, please disable swap or set --fail-swap-on flag to false. /proc/swaps contained: {active:?}"
        ));
    }
    Ok(c)
}

/// `--cert-dir`, else `<root-dir>/pki` (upstream's default with the default root).
fn cert_dir(f: &Flags) -> PathBuf {
    f.cert_dir.clone().unwrap_or_else(|| f.root_dir.join("pki"))
}

/// The kubelet API's TLS: `tlsCertFile`/`tlsPrivateKeyFile`, or a self-signed pair in
/// the cert dir for the node's names; client certificates are verified against
/// `authentication.x509.clientCAFile` when set.
fn serving_tls(
    cfg: &KubeletConfiguration,
    certs: &std::path::Path,
    node: &str,
    ip: &str,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let (crt, key) = if cfg.tls_cert_file.is_empty() {
        let mut names = vec![node.to_string(), "localhost".into(), "127.0.0.1".into()];
        if !ip.is_empty() {
            names.push(ip.to_string());
        }
        component_base::tls::ensure_self_signed(certs, "kubelet", &names)?
    } else {
        (
            PathBuf::from(&cfg.tls_cert_file),
            PathBuf::from(&cfg.tls_private_key_file),
        )
    };
    let roots = match cfg.authentication.x509.client_ca_file.as_str() {
        "" => Vec::new(),
        ca => component_base::tls::load_roots(std::path::Path::new(ca))?,
    };
    let mut tls = (*component_base::tls::server_config(&crt, &key, &roots)?).clone();
    // Exec and port-forward upgrade HTTP/1.1 connections.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(tls))
}

/// The kubelet's client: TLS-bootstrapped from `--bootstrap-kubeconfig` when the
/// `--kubeconfig` has no valid credentials, and with `rotateCertificates` presenting the
/// store's current certificate, which a background task renews before it expires.
async fn client(
    f: &Flags,
    cfg: &KubeletConfiguration,
    node: &str,
    agent: &str,
) -> Result<kube::Client, String> {
    use kubelet::certificate::{bootstrap, manager, store::FileStore};
    if let Some(boot) = &f.bootstrap_kubeconfig {
        let kubeconfig = f
            .kubeconfig
            .as_deref()
            .ok_or("--bootstrap-kubeconfig needs --kubeconfig: the path to write the issued credentials to")?;
        bootstrap::load_client_cert(kubeconfig, boot, &cert_dir(f), node, agent).await?;
    }
    if !cfg.rotate_certificates {
        return client_go::rest::client(f.kubeconfig.as_deref(), agent).await;
    }
    let kubeconfig = f
        .kubeconfig
        .as_deref()
        .ok_or("rotateCertificates needs --kubeconfig with a client certificate")?;
    let store = FileStore::new(&cert_dir(f), "kubelet-client");
    // A kubeconfig with its own certificate seeds the store, as upstream's manager
    // starts from the kubeconfig's pair.
    if store.current().is_none() {
        let (cert, key) = match client_go::cert_reload::certificate_files(kubeconfig)? {
            Some((c, k)) => (
                std::fs::read_to_string(&c).map_err(|e| format!("{}: {e}", c.display()))?,
                std::fs::read_to_string(&k).map_err(|e| format!("{}: {e}", k.display()))?,
            ),
            None => match bootstrap::embedded_pair(kubeconfig) {
                Some((cert, key)) if !key.is_empty() => (cert, key),
                _ => {
                    return Err(format!(
                        "rotateCertificates: the kubeconfig {} has no client certificate to rotate",
                        kubeconfig.display()
                    ));
                }
            },
        };
        store.update(&cert, &key)?;
    }
    let config = client_go::rest::config(Some(kubeconfig), agent).await?;
    let current = store.current_path();
    let client = client_go::cert_reload::client(config, current.clone(), current, false)?;
    tokio::spawn(manager::run(store, client.clone(), node.to_string()));
    Ok(client)
}

/// `serverTLSBootstrap`: the kubelet API presents the certificate the cluster issues
/// (`<cert-dir>/kubelet-server-current.pem`), requested and renewed in the background.
fn bootstrapped_serving_tls(
    cfg: &KubeletConfiguration,
    f: &Flags,
    node: &str,
    ip: &str,
    client: &kube::Client,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use kubelet::certificate::{serving, store::FileStore};
    let store = FileStore::new(&cert_dir(f), "kubelet-server");
    let resolver = std::sync::Arc::new(serving::StoreServerCert::new(store.current_path()));
    let roots = match cfg.authentication.x509.client_ca_file.as_str() {
        "" => Vec::new(),
        ca => component_base::tls::load_roots(std::path::Path::new(ca))?,
    };
    let mut tls = (*component_base::tls::server_config_resolving(resolver, &roots)?).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let ips: Vec<std::net::IpAddr> = ip.parse().into_iter().collect();
    tokio::spawn(serving::run(
        store,
        client.clone(),
        serving::request(node, &component_base::hostname(), &ips),
    ));
    Ok(std::sync::Arc::new(tls))
}

/// `cpu=200m,memory=500Mi,pid=1000` (`--kube-reserved`, `--system-reserved`; the
/// names and quantities are checked with the configuration).
fn reservation(v: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut m = std::collections::BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (k, q) = part.split_once('=').ok_or_else(|| {
            format!("invalid reservation {part:?}: must be <resource>=<quantity>")
        })?;
        m.insert(k.to_string(), q.to_string());
    }
    Ok(m)
}

async fn run(f: Flags) -> Result<(), String> {
    let mut cfg = configuration(&f)?;
    if f.fake_container_runtime {
        let socket = f.root_dir.join("fake-cri.sock");
        let fake = kubelet::cri::fake::FakeRuntime::new(f.root_dir.join("fake-logs"));
        let s = socket.clone();
        tokio::spawn(async move {
            if let Err(e) = fake.serve(s).await {
                tracing::error!(error = e, "fake runtime failed");
            }
        });
        cfg.container_runtime_endpoint = format!("unix://{}", socket.display());
    }
    let node_name = f
        .hostname_override
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(component_base::hostname)
        .to_lowercase();
    let node_ip = f
        .node_ip
        .clone()
        .unwrap_or_default()
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut labels = std::collections::BTreeMap::new();
    for l in &f.node_labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("invalid --node-labels entry {l:?}: must be key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    std::fs::create_dir_all(&f.root_dir)
        .map_err(|e| format!("creating root dir {}: {e}", f.root_dir.display()))?;
    let agent = format!(
        "kubelet/v1.35.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let client = client(&f, &cfg, &node_name, &agent).await?;
    let timeout = KubeletConfiguration::duration(&cfg.runtime_request_timeout);
    let runtime =
        kubelet::cri::remote::RemoteRuntime::connect(&cfg.container_runtime_endpoint, timeout)?;
    let tls = if cfg.server_tls_bootstrap && cfg.tls_cert_file.is_empty() {
        bootstrapped_serving_tls(&cfg, &f, &node_name, &node_ip, &client)?
    } else {
        serving_tls(&cfg, &cert_dir(&f), &node_name, &node_ip)?
    };
    // A hollow node's pods are no processes: it leaves the host's cgroups alone.
    let cm = kubelet::cm::ContainerManager::new(&cfg, !f.fake_container_runtime)?;
    let k = kubelet::kubelet::Kubelet::new(
        cfg,
        node_name,
        node_ip,
        f.root_dir.clone(),
        client,
        runtime,
        cm,
    );
    kubelet::run::run(
        k,
        kubelet::run::Options {
            node_labels: labels,
            tls,
        },
        component_base::signals::shutdown_signal(),
    )
    .await
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("kubelet", run(flags).await);
}
