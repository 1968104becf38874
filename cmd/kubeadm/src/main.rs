//! kubeadm: upstream's commands and flags for bootstrapping a cluster. Implemented so
//! far: `init` (and its phases certs|kubeconfig|etcd|control-plane|upload-config|
//! mark-control-plane|bootstrap-token), `join` of a worker, `reset`, `certs check-expiration|renew`, `token
//! generate|create|list|delete` and `version`; other commands say they are not available
//! yet rather than pretending.

mod app;

use app::apis::kubeadm::{InitConfig, KUBERNETES_DIR};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// kubeadm: easily bootstrap a secure Kubernetes cluster
#[derive(Parser)]
#[command(name = "kubeadm", version = "v1.35.0")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run this command in order to set up the Kubernetes control plane
    Init(Box<InitCmd>),
    /// Run this on any machine you wish to join an existing cluster
    Join(JoinCmd),
    /// Performs a best effort revert of changes made to this host by 'kubeadm init' or 'kubeadm join'
    Reset {
        /// Reset the node without prompting for confirmation.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Path to the CRI socket to connect.
        #[arg(
            long = "cri-socket",
            default_value = "unix:///var/run/containerd/containerd.sock"
        )]
        cri_socket: String,
        /// The path to the directory where the certificates are stored.
        #[arg(long = "cert-dir", default_value = "/etc/kubernetes/pki")]
        cert_dir: PathBuf,
    },
    /// Commands related to handling kubernetes certificates
    Certs {
        #[command(subcommand)]
        command: CertsCmd,
    },
    /// Manage bootstrap tokens
    Token(TokenCmd),
    /// Upgrade your cluster smoothly to a newer version with this command
    Upgrade {
        #[command(subcommand)]
        command: UpgradeCmd,
    },
    /// Print the version of kubeadm
    Version {
        /// Output format; available options are 'yaml', 'json' and 'short'
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
}

#[derive(Subcommand)]
enum UpgradeCmd {
    /// Upgrade your Kubernetes cluster to the specified version
    Apply {
        /// The version to upgrade to (e.g. v1.35.1).
        version: Option<String>,
        #[command(flatten)]
        flags: UpgradeFlags,
        /// Perform the upgrade and do not prompt for confirmation (non-interactive mode).
        #[arg(short = 'y', long = "yes")]
        yes: bool,
        /// Force upgrading although some requirements might not be met. This also implies non-interactive mode.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Show unstable versions of Kubernetes as an upgrade alternative and allow upgrading to an alpha/beta/release candidate versions of Kubernetes.
        #[arg(long = "allow-experimental-upgrades")]
        allow_experimental: bool,
        /// Show release candidate versions of Kubernetes as an upgrade alternative and allow upgrading to a release candidate versions of Kubernetes.
        #[arg(long = "allow-release-candidate-upgrades")]
        allow_rc: bool,
    },
    /// Upgrade commands for a node in the cluster
    Node {
        #[command(flatten)]
        flags: UpgradeFlags,
    },
    /// Check which versions are available to upgrade to and validate whether your current cluster is upgradeable.
    Plan {
        /// The version to plan an upgrade to (kubeadm's own version by default).
        version: Option<String>,
        /// Path to a kubeadm configuration file.
        #[arg(long = "config")]
        config: Option<PathBuf>,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
        /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
        #[arg(long = "ignore-preflight-errors", value_delimiter = ',')]
        ignore_preflight_errors: Vec<String>,
    },
}

/// Flags `kubeadm upgrade apply` and `kubeadm upgrade node` share.
#[derive(Args)]
struct UpgradeFlags {
    /// Path to a kubeadm configuration file (an UpgradeConfiguration).
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// The kubeconfig file to use when talking to the cluster.
    #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
    kubeconfig: PathBuf,
    /// Perform the renewal of certificates used by component changed during upgrades.
    #[arg(long = "certificate-renewal", num_args = 0..=1, default_missing_value = "true")]
    certificate_renewal: Option<bool>,
    /// Perform the upgrade of etcd.
    #[arg(long = "etcd-upgrade", num_args = 0..=1, default_missing_value = "true")]
    etcd_upgrade: Option<bool>,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
    #[arg(long = "ignore-preflight-errors", value_delimiter = ',')]
    ignore_preflight_errors: Vec<String>,
}

impl UpgradeFlags {
    /// The options of `--config` (or the defaults) with these flags over them.
    fn options(&self, node: bool) -> Result<app::cmd::upgrade::UpgradeOptions, String> {
        let cfg = app::apis::kubeadm::UpgradeConfiguration::read(self.config.as_deref())?;
        let mut o = app::cmd::upgrade::UpgradeOptions::from_config(&cfg, node)?;
        if let Some(v) = self.certificate_renewal {
            o.certificate_renewal = v;
        }
        if let Some(v) = self.etcd_upgrade {
            o.etcd_upgrade = v;
        }
        o.ignore_preflight_errors
            .extend(self.ignore_preflight_errors.iter().cloned());
        Ok(o)
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct InitCmd {
    #[command(subcommand)]
    phase: Option<InitPhaseCmd>,
    #[command(flatten)]
    flags: ConfigFlags,
    #[command(flatten)]
    manifests: ManifestsDir,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
    #[arg(long = "ignore-preflight-errors", value_delimiter = ',')]
    ignore_preflight_errors: Vec<String>,
    /// Skip printing of the default bootstrap token generated by 'kubeadm init'.
    #[arg(long = "skip-token-print")]
    skip_token_print: bool,
    /// The token to use for establishing bidirectional trust between nodes and control-plane nodes. The format is [a-z0-9]{6}\.[a-z0-9]{16} - e.g. abcdef.0123456789abcdef
    #[arg(long = "token")]
    token: Option<String>,
    /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). If set to '0', the token will never expire
    #[arg(long = "token-ttl")]
    token_ttl: Option<String>,
    /// Upload control-plane certificates to the kubeadm-certs Secret.
    #[arg(long = "upload-certs")]
    upload_certs: bool,
    /// Key used to encrypt the control-plane certificates in the kubeadm-certs Secret. The certificate key is a hex encoded string that is an AES key of size 32 bytes.
    #[arg(long = "certificate-key")]
    certificate_key: Option<String>,
    /// List of phases to be skipped (not available in this build yet).
    #[arg(long = "skip-phases", value_delimiter = ',')]
    skip_phases: Vec<String>,
}

#[derive(Subcommand)]
enum InitPhaseCmd {
    /// Use this command to invoke single phase of the init workflow
    Phase {
        #[command(subcommand)]
        phase: Phase,
    },
}

#[derive(Subcommand)]
enum Phase {
    /// Certificate generation
    Certs {
        /// all, ca, apiserver, apiserver-kubelet-client, front-proxy-ca, front-proxy-client,
        /// etcd-ca, etcd-server, etcd-peer, etcd-healthcheck-client, apiserver-etcd-client, sa
        #[arg(default_value = "all")]
        which: String,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Generate all static Pod manifest files necessary to establish the control plane
    ControlPlane {
        /// all, apiserver, controller-manager, scheduler
        #[arg(default_value = "all")]
        which: String,
        #[command(flatten)]
        flags: ConfigFlags,
        #[command(flatten)]
        manifests: ManifestsDir,
    },
    /// Generate static Pod manifest file for local etcd
    Etcd {
        /// local
        which: String,
        #[command(flatten)]
        flags: ConfigFlags,
        #[command(flatten)]
        manifests: ManifestsDir,
    },
    /// Upload the kubeadm and kubelet configuration to a ConfigMap
    UploadConfig {
        /// all, kubeadm, kubelet
        #[arg(default_value = "all")]
        which: String,
        #[command(flatten)]
        flags: ConfigFlags,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
    },
    /// Upload certificates to kubeadm-certs
    UploadCerts {
        #[command(flatten)]
        flags: ConfigFlags,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
        /// Upload control-plane certificates to the kubeadm-certs Secret.
        #[arg(long = "upload-certs")]
        upload_certs: bool,
        /// Key used to encrypt the control-plane certificates in the kubeadm-certs Secret.
        #[arg(long = "certificate-key")]
        certificate_key: Option<String>,
    },
    /// Mark a node as a control-plane
    MarkControlPlane {
        #[command(flatten)]
        flags: ConfigFlags,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
    },
    /// Generates bootstrap tokens used to join a node to a cluster
    BootstrapToken {
        #[command(flatten)]
        flags: ConfigFlags,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
    },
    /// Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file
    Kubeconfig {
        /// all, admin, super-admin, kubelet, controller-manager, scheduler
        #[arg(default_value = "all")]
        which: String,
        #[command(flatten)]
        flags: ConfigFlags,
        /// The path where to save the kubeconfig file.
        #[arg(long = "kubeconfig-dir", default_value = KUBERNETES_DIR)]
        kubeconfig_dir: PathBuf,
    },
}

/// Where the static Pod manifests go: `/etc/kubernetes/manifests`, as upstream; the
/// hidden flag lets tests write elsewhere.
#[derive(Args, Clone)]
struct ManifestsDir {
    #[arg(
        long = "manifests-dir",
        default_value = "/etc/kubernetes/manifests",
        hide = true
    )]
    manifests_dir: PathBuf,
}

/// The flags the init phases share with `kubeadm init`.
#[derive(Args, Clone)]
struct ConfigFlags {
    /// Path to a kubeadm configuration file.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// The path where to save and store the certificates.
    #[arg(long = "cert-dir")]
    cert_dir: Option<PathBuf>,
    /// The IP address the API Server will advertise it's listening on.
    #[arg(long = "apiserver-advertise-address")]
    apiserver_advertise_address: Option<String>,
    /// Port for the API Server to bind to.
    #[arg(long = "apiserver-bind-port")]
    apiserver_bind_port: Option<u16>,
    /// Optional extra Subject Alternative Names (SANs) to use for the API Server serving certificate.
    #[arg(long = "apiserver-cert-extra-sans", value_delimiter = ',')]
    apiserver_cert_extra_sans: Vec<String>,
    /// Specify a stable IP address or DNS name for the control plane.
    #[arg(long = "control-plane-endpoint")]
    control_plane_endpoint: Option<String>,
    /// Use alternative range of IP address for service VIPs.
    #[arg(long = "service-cidr")]
    service_cidr: Option<String>,
    /// Use alternative domain for services, e.g. "myorg.internal".
    #[arg(long = "service-dns-domain")]
    service_dns_domain: Option<String>,
    /// Specify the node name.
    #[arg(long = "node-name")]
    node_name: Option<String>,
    /// Specify range of IP addresses for the pod network. If set, the control plane will automatically allocate CIDRs for every node.
    #[arg(long = "pod-network-cidr")]
    pod_network_cidr: Option<String>,
    /// Path to the CRI socket to connect. If empty kubeadm will try to auto-detect this value; use this option only if you have more than one CRI installed or if you have non-standard CRI socket.
    #[arg(long = "cri-socket")]
    cri_socket: Option<String>,
    /// Choose a container registry to pull control plane images from
    #[arg(long = "image-repository")]
    image_repository: Option<String>,
}

#[derive(Args)]
struct JoinCmd {
    /// The control plane endpoint (host:port) to join.
    endpoint: Option<String>,
    /// Use this token for both discovery-token and tls-bootstrap-token when those values are not provided.
    #[arg(long = "token")]
    token: Option<String>,
    /// For token-based discovery, the token used to validate cluster information fetched from the API server.
    #[arg(long = "discovery-token")]
    discovery_token: Option<String>,
    /// For token-based discovery, validate that the root CA public key matches this hash (format: "<type>:<value>").
    #[arg(long = "discovery-token-ca-cert-hash", value_delimiter = ',')]
    discovery_token_ca_cert_hash: Vec<String>,
    /// For token-based discovery, allow joining without --discovery-token-ca-cert-hash pinning.
    #[arg(long = "discovery-token-unsafe-skip-ca-verification")]
    discovery_token_unsafe_skip_ca_verification: bool,
    /// Specify the node name.
    #[arg(long = "node-name")]
    node_name: Option<String>,
    /// Path to the CRI socket to connect.
    #[arg(
        long = "cri-socket",
        default_value = "unix:///var/run/containerd/containerd.sock"
    )]
    cri_socket: String,
    /// Create a new control plane instance on this node
    #[arg(long = "control-plane")]
    control_plane: bool,
    /// Use this key to decrypt the certificate secrets uploaded by init. The certificate key is a hex encoded string that is an AES key of size 32 bytes.
    #[arg(long = "certificate-key")]
    certificate_key: Option<String>,
    /// If the node should host a new control plane instance, the IP address the API Server will advertise it's listening on. If not set the default network interface will be used.
    #[arg(long = "apiserver-advertise-address")]
    apiserver_advertise_address: Option<String>,
    /// If the node should host a new control plane instance, the port for the API Server to bind to.
    #[arg(long = "apiserver-bind-port", default_value_t = 6443)]
    apiserver_bind_port: u16,
    /// A list of checks whose errors will be shown as warnings. Value 'all' ignores errors from all checks.
    #[arg(long = "ignore-preflight-errors", value_delimiter = ',')]
    ignore_preflight_errors: Vec<String>,
    #[command(flatten)]
    manifests: ManifestsDir,
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Renew certificates for a Kubernetes cluster
    Renew {
        /// all, or one of admin.conf, apiserver, apiserver-etcd-client,
        /// apiserver-kubelet-client, controller-manager.conf, etcd-healthcheck-client,
        /// etcd-peer, etcd-server, front-proxy-client, scheduler.conf, super-admin.conf
        which: String,
        #[arg(long = "cert-dir")]
        cert_dir: Option<PathBuf>,
        /// Path to a kubeadm configuration file.
        #[arg(long = "config")]
        config: Option<PathBuf>,
        /// The kubeconfig file to use when talking to the cluster (the kubeconfig files
        /// renewed are the ones beside it).
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
    },
    /// Generate certificate keys
    CertificateKey,
    /// Check certificates expiration for a Kubernetes cluster
    CheckExpiration {
        #[arg(long = "cert-dir")]
        cert_dir: Option<PathBuf>,
        /// Path to a kubeadm configuration file.
        #[arg(long = "config")]
        config: Option<PathBuf>,
        /// The kubeconfig file to use when talking to the cluster.
        #[arg(long = "kubeconfig", default_value = "/etc/kubernetes/admin.conf")]
        kubeconfig: PathBuf,
    },
}

#[derive(Args)]
struct TokenCmd {
    /// The kubeconfig file to use when talking to the cluster.
    #[arg(
        long = "kubeconfig",
        global = true,
        default_value = "/etc/kubernetes/admin.conf"
    )]
    kubeconfig: PathBuf,
    #[command(subcommand)]
    command: TokenSub,
}

#[derive(Subcommand)]
enum TokenSub {
    /// Generate and print a bootstrap token, but do not create it on the server
    Generate,
    /// Create bootstrap tokens on the server
    Create {
        /// The token to create (generated when omitted).
        token: Option<String>,
        /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). If set to '0', the token will never expire
        #[arg(long = "ttl", default_value = "24h0m0s")]
        ttl: String,
        /// A human friendly description of how this token is used.
        #[arg(long = "description", default_value = "")]
        description: String,
        /// Extra groups that this token will authenticate as when used for authentication.
        #[arg(
            long = "groups",
            value_delimiter = ',',
            default_value = "system:bootstrappers:kubeadm:default-node-token"
        )]
        groups: Vec<String>,
        /// Describes the ways in which this token can be used.
        #[arg(
            long = "usages",
            value_delimiter = ',',
            default_value = "signing,authentication"
        )]
        usages: Vec<String>,
        /// Instead of printing only the token, print the full 'kubeadm join' flag needed to join the cluster using the token.
        #[arg(long = "print-join-command")]
        print_join_command: bool,
    },
    /// List bootstrap tokens on the server
    List,
    /// Delete bootstrap tokens on the server
    Delete { tokens: Vec<String> },
}

/// The address of the interface the default route leaves by (upstream's
/// `ChooseHostInterface`); a UDP `connect` sends nothing.
fn default_address() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip().to_string())
}

/// The configuration from `--config` and the flags (flags win), defaulted as upstream.
fn load(flags: &ConfigFlags) -> Result<(InitConfig, String, PathBuf), String> {
    let mut cfg = match &flags.config {
        Some(p) => InitConfig::load(
            &std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )?,
        None => InitConfig::default(),
    };
    let ep = &mut cfg.init.local_api_endpoint;
    if let Some(a) = &flags.apiserver_advertise_address {
        ep.advertise_address = a.clone();
    }
    if ep.advertise_address.is_empty() {
        ep.advertise_address = default_address().ok_or(
            "unable to select an IP from the default route: use --apiserver-advertise-address",
        )?;
    }
    if let Some(p) = flags.apiserver_bind_port {
        ep.bind_port = p;
    }
    let c = &mut cfg.cluster;
    c.api_server
        .cert_sans
        .extend(flags.apiserver_cert_extra_sans.iter().cloned());
    if let Some(e) = &flags.control_plane_endpoint {
        c.control_plane_endpoint = e.clone();
    }
    if let Some(s) = &flags.service_cidr {
        c.networking.service_subnet = s.clone();
    }
    if let Some(d) = &flags.service_dns_domain {
        c.networking.dns_domain = d.clone();
    }
    if let Some(d) = &flags.cert_dir {
        c.certificates_dir = d.display().to_string();
    }
    if let Some(p) = &flags.pod_network_cidr {
        c.networking.pod_subnet = p.clone();
    }
    if let Some(r) = &flags.image_repository {
        c.image_repository = r.clone();
    }
    if let Some(s) = &flags.cri_socket {
        cfg.init.node_registration.cri_socket = s.clone();
    }
    let node = flags
        .node_name
        .clone()
        .or_else(|| Some(cfg.init.node_registration.name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(component_base::hostname);
    cfg.init.node_registration.name = node.clone();
    cfg.validate()?;
    let dir = PathBuf::from(&cfg.cluster.certificates_dir);
    Ok((cfg, node, dir))
}

/// The flags of commands that work on this machine's files only (`certs ...`).
fn local_flags(config: Option<PathBuf>, cert_dir: Option<PathBuf>) -> ConfigFlags {
    ConfigFlags {
        config,
        cert_dir,
        // No address is needed to read or renew files; none is looked up.
        apiserver_advertise_address: Some("127.0.0.1".into()),
        apiserver_bind_port: None,
        apiserver_cert_extra_sans: vec![],
        control_plane_endpoint: None,
        service_cidr: None,
        service_dns_domain: None,
        node_name: None,
        pod_network_cidr: None,
        cri_socket: None,
        image_repository: None,
    }
}

/// The configuration, cert dir and kubeconfig dir of a `certs` command. The
/// configuration is read from `--config` or defaulted; reading it from the cluster's
/// kubeadm-config is not done yet, which is said as upstream says it when it cannot.
fn local_certs(
    command: &str,
    config: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
    kubeconfig: &Path,
) -> Result<(InitConfig, PathBuf, PathBuf), String> {
    let (cfg, _, dir) = load(&local_flags(config, cert_dir))?;
    println!(
        "[{command}] Error reading configuration from the Cluster. Falling back to default configuration\n"
    );
    let kubeconfig_dir = kubeconfig
        .parent()
        .unwrap_or(Path::new(KUBERNETES_DIR))
        .to_path_buf();
    Ok((cfg, dir, kubeconfig_dir))
}

fn phase_certs(which: &str, flags: &ConfigFlags) -> Result<(), String> {
    use app::phases::certs;
    let (cfg, node, dir) = load(flags)?;
    match which {
        "all" => certs::create_all(&cfg, &node, &dir),
        "sa" => certs::create_service_account_keys(&cfg, &dir),
        name => {
            let c = certs::certificates(&cfg)
                .into_iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("unknown certificate phase {name:?}"))?;
            certs::create(&cfg, &node, &dir, &c)
        }
    }
}

fn phase_kubeconfig(which: &str, flags: &ConfigFlags, out: &Path) -> Result<(), String> {
    use app::phases::kubeconfig;
    let (cfg, node, dir) = load(flags)?;
    match which {
        "all" => kubeconfig::create_all(&cfg, &node, &dir, out),
        name => {
            let spec = kubeconfig::specs(&node)
                .into_iter()
                .find(|s| s.file.trim_end_matches(".conf") == name)
                .ok_or_else(|| format!("unknown kubeconfig phase {name:?}"))?;
            kubeconfig::create(&cfg, &dir, out, &spec)
        }
    }
}

async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    client_go::rest::client(Some(kubeconfig), "kubeadm/v1.35.0 (linux) kubernetes/rust").await
}

/// A client from admin.conf whose group is bound to cluster-admin first (through
/// super-admin.conf beside it when admin.conf may not yet), as `kubeadm init` does.
async fn admin_client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let admin = client(kubeconfig).await?;
    let super_path = kubeconfig.with_file_name("super-admin.conf");
    let super_admin = match super_path.exists() {
        true => Some(client(&super_path).await?),
        false => None,
    };
    app::phases::bootstraptoken::ensure_admin_binding(&admin, super_admin.as_ref()).await?;
    Ok(admin)
}

async fn upgrade(command: UpgradeCmd) -> Result<(), String> {
    match command {
        UpgradeCmd::Apply {
            version,
            flags,
            yes,
            force,
            allow_experimental,
            allow_rc,
        } => {
            let mut o = flags.options(false)?;
            o.version = version.or(o.version);
            o.force |= force;
            o.yes = yes || o.force;
            o.allow_experimental |= allow_experimental;
            o.allow_rc |= allow_rc;
            let client = client(&flags.kubeconfig).await?;
            app::cmd::upgrade::apply(&client, &o).await
        }
        UpgradeCmd::Node { flags } => {
            let o = flags.options(true)?;
            // Workers have no admin.conf: their kubelet's credentials may read the
            // configuration, as upstream falls back to.
            let kubeconfig = match flags.kubeconfig.exists() {
                true => flags.kubeconfig.clone(),
                false => Path::new(KUBERNETES_DIR).join("kubelet.conf"),
            };
            let client = client(&kubeconfig).await?;
            app::cmd::upgrade::node(&client, &o).await
        }
        UpgradeCmd::Plan {
            version,
            config,
            kubeconfig,
            ignore_preflight_errors,
        } => {
            let cfg = app::apis::kubeadm::UpgradeConfiguration::read(config.as_deref())?;
            let mut o = app::cmd::upgrade::UpgradeOptions::from_config(&cfg, false)?;
            // The plan section's own settings, not apply's.
            o.allow_experimental = cfg.plan.allow_experimental_upgrades;
            o.allow_rc = cfg.plan.allow_rc_upgrades;
            o.ignore_preflight_errors = cfg.plan.ignore_preflight_errors.clone();
            o.ignore_preflight_errors.extend(ignore_preflight_errors);
            let version = version.or(Some(cfg.plan.kubernetes_version).filter(|v| !v.is_empty()));
            let client = client(&kubeconfig).await?;
            app::cmd::upgrade::plan(&client, version, &o).await
        }
    }
}

async fn join(j: JoinCmd) -> Result<(), String> {
    let control_plane = match (j.control_plane, j.certificate_key) {
        (true, Some(key)) => Some(app::cmd::joincontrolplane::ControlPlaneJoin {
            certificate_key: key,
            advertise_address: match j.apiserver_advertise_address {
                Some(a) => a,
                None => default_address().ok_or(
                    "unable to select an IP from the default route: use --apiserver-advertise-address",
                )?,
            },
            bind_port: j.apiserver_bind_port,
            manifests_dir: j.manifests.manifests_dir,
        }),
        // Without the key the certificates would have to be copied by hand first, which
        // this kubeadm does not check for: refused rather than half done.
        (true, None) => {
            return Err("--control-plane needs --certificate-key (the key 'kubeadm init --upload-certs' printed); copying the certificates by hand is not supported".into());
        }
        (false, Some(_)) => {
            return Err("--certificate-key is only used with --control-plane".into());
        }
        (false, None) => None,
    };
    let endpoint = j
        .endpoint
        .ok_or("the control plane endpoint to join is required: kubeadm join <host:port> ...")?;
    let token = j
        .discovery_token
        .or(j.token)
        .ok_or("discovery: Invalid value: \"\": bootstrapToken or file must be set (--token or --discovery-token)")?;
    let opts = app::cmd::join::JoinOptions {
        endpoint,
        token,
        ca_cert_hashes: j.discovery_token_ca_cert_hash,
        unsafe_skip_ca_verification: j.discovery_token_unsafe_skip_ca_verification,
        node_name: j.node_name.unwrap_or_else(component_base::hostname),
        cri_socket: j.cri_socket,
        discovery_timeout: std::time::Duration::from_secs(300),
        tls_bootstrap_timeout: std::time::Duration::from_secs(300),
        control_plane,
        ignore_preflight_errors: j.ignore_preflight_errors,
    };
    app::cmd::join::run(&opts).await
}

async fn token(cmd: TokenCmd) -> Result<(), String> {
    use app::cmd::token;
    match cmd.command {
        TokenSub::Generate => println!("{}", token::generate()?),
        TokenSub::Create {
            token: t,
            ttl,
            description,
            groups,
            usages,
            print_join_command,
        } => {
            let t = match t {
                Some(t) => {
                    token::parse(&t)?;
                    t
                }
                None => token::generate()?,
            };
            let ttl = apimachinery::duration::parse(&ttl).map_err(|e| format!("--ttl: {e}"))?;
            let c = client(&cmd.kubeconfig).await?;
            token::create(
                &c,
                &token::TokenSpec {
                    token: t.clone(),
                    description,
                    ttl,
                    usages,
                    groups,
                },
            )
            .await?;
            if print_join_command {
                let (server, ca) = token::kubeconfig_server_and_ca(&cmd.kubeconfig)?;
                println!("{}", token::join_command(&server, &t, &ca)?);
            } else {
                println!("{t}");
            }
        }
        TokenSub::List => print!("{}", token::list(&client(&cmd.kubeconfig).await?).await?),
        TokenSub::Delete { tokens } => {
            if tokens.is_empty() {
                return Err("missing argument; 'token delete' is missing token of form \"[a-z0-9]{6}\" or \"[a-z0-9]{6}.[a-z0-9]{16}\"".into());
            }
            let c = client(&cmd.kubeconfig).await?;
            for t in tokens {
                println!("{}", token::delete(&c, &t).await?);
            }
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Init(init) => match *init {
            InitCmd {
                phase: None,
                flags,
                manifests,
                ignore_preflight_errors,
                skip_token_print,
                token,
                token_ttl,
                upload_certs,
                certificate_key,
                skip_phases,
            } => {
                if !skip_phases.is_empty() {
                    return Err("--skip-phases is not available in this build yet; run the phases you want with 'kubeadm init phase ...'".into());
                }
                let (mut cfg, node, cert_dir) = load(&flags)?;
                if cfg.init.bootstrap_tokens.is_empty() {
                    cfg.init.bootstrap_tokens.push(Default::default());
                }
                if let Some(t) = token {
                    app::cmd::token::parse(&t)?;
                    cfg.init.bootstrap_tokens[0].token = t;
                }
                if let Some(ttl) = token_ttl {
                    apimachinery::duration::parse(&ttl).map_err(|e| format!("--token-ttl: {e}"))?;
                    cfg.init.bootstrap_tokens[0].ttl = ttl;
                }
                if let Some(k) = certificate_key {
                    cfg.init.certificate_key = k;
                }
                app::cmd::init::run(&app::cmd::init::InitOptions {
                    cfg,
                    node,
                    cert_dir,
                    manifests_dir: manifests.manifests_dir,
                    ignore_preflight_errors,
                    skip_token_print,
                    upload_certs,
                })
                .await
            }
            InitCmd {
                phase: Some(InitPhaseCmd::Phase { phase }),
                ..
            } => match phase {
                Phase::Certs { which, flags } => phase_certs(&which, &flags),
                Phase::Kubeconfig {
                    which,
                    flags,
                    kubeconfig_dir,
                } => phase_kubeconfig(&which, &flags, &kubeconfig_dir),
                Phase::ControlPlane {
                    which,
                    flags,
                    manifests,
                } => {
                    let (cfg, _, _) = load(&flags)?;
                    app::phases::controlplane::create(&cfg, &which, &manifests.manifests_dir)
                }
                Phase::Etcd {
                    which,
                    flags,
                    manifests,
                } => {
                    if which != "local" {
                        return Err(format!("unknown etcd phase {which:?}: local"));
                    }
                    let (cfg, node, _) = load(&flags)?;
                    app::phases::controlplane::create_etcd(&cfg, &node, &manifests.manifests_dir)
                }
                Phase::UploadConfig {
                    which,
                    flags,
                    kubeconfig,
                } => {
                    use app::phases::uploadconfig;
                    let (cfg, _, _) = load(&flags)?;
                    let c = admin_client(&kubeconfig).await?;
                    if matches!(which.as_str(), "all" | "kubeadm") {
                        uploadconfig::upload_kubeadm_config(&c, &cfg).await?;
                    }
                    if matches!(which.as_str(), "all" | "kubelet") {
                        uploadconfig::upload_kubelet_config(&c, &cfg).await?;
                    }
                    if !matches!(which.as_str(), "all" | "kubeadm" | "kubelet") {
                        return Err(format!("unknown upload-config phase {which:?}"));
                    }
                    Ok(())
                }
                Phase::UploadCerts {
                    flags,
                    kubeconfig,
                    upload_certs,
                    certificate_key,
                } => {
                    if !upload_certs {
                        println!("[upload-certs] Skipping phase. Please see --upload-certs");
                        return Ok(());
                    }
                    let (mut cfg, _, _) = load(&flags)?;
                    if let Some(k) = certificate_key.filter(|k| !k.is_empty()) {
                        cfg.init.certificate_key = k;
                    }
                    let c = admin_client(&kubeconfig).await?;
                    app::phases::copycerts::upload_certs(&c, &cfg)
                        .await
                        .map(|_| ())
                }
                Phase::MarkControlPlane { flags, kubeconfig } => {
                    let (cfg, node, _) = load(&flags)?;
                    let c = admin_client(&kubeconfig).await?;
                    app::phases::markcontrolplane::run(&c, &cfg, &node).await
                }
                Phase::BootstrapToken { flags, kubeconfig } => {
                    let (cfg, _, dir) = load(&flags)?;
                    let c = admin_client(&kubeconfig).await?;
                    let ca = std::fs::read_to_string(dir.join("ca.crt"))
                        .map_err(|e| format!("{}: {e}", dir.join("ca.crt").display()))?;
                    app::phases::bootstraptoken::run(&c, &cfg, &ca)
                        .await
                        .map(|_| ())
                }
            },
        },
        Command::Join(j) => join(j).await,
        Command::Certs {
            command: CertsCmd::CertificateKey,
        } => {
            println!("{}", app::phases::copycerts::create_certificate_key()?);
            Ok(())
        }
        Command::Certs {
            command:
                CertsCmd::CheckExpiration {
                    cert_dir,
                    config,
                    kubeconfig,
                },
        } => {
            let (cfg, dir, kubeconfig_dir) =
                local_certs("check-expiration", config, cert_dir, &kubeconfig)?;
            print!(
                "{}",
                app::cmd::certs::check_expiration(&cfg, &dir, &kubeconfig_dir)
            );
            Ok(())
        }
        Command::Certs {
            command:
                CertsCmd::Renew {
                    which,
                    cert_dir,
                    config,
                    kubeconfig,
                },
        } => {
            let (cfg, dir, kubeconfig_dir) = local_certs("renew", config, cert_dir, &kubeconfig)?;
            print!(
                "{}",
                app::cmd::renew::renew(&cfg, &which, &dir, &kubeconfig_dir)?
            );
            Ok(())
        }
        Command::Reset {
            force,
            cri_socket,
            cert_dir,
        } => {
            app::cmd::reset::run(&app::cmd::reset::ResetOptions {
                force,
                cri_socket,
                cert_dir,
            })
            .await
        }
        Command::Token(t) => token(t).await,
        Command::Upgrade { command } => upgrade(command).await,
        Command::Version { output } => {
            let platform = format!("{}/{}", std::env::consts::OS, component_base::go_arch());
            let info = serde_json::json!({"clientVersion": {"major": "1", "minor": "35",
                "gitVersion": "v1.35.0", "platform": platform}});
            match output.as_deref() {
                None => println!(
                    "kubeadm version: &version.Info{{Major:\"1\", Minor:\"35\", GitVersion:\"v1.35.0\", Platform:\"{platform}\"}}"
                ),
                Some("short") => println!("v1.35.0"),
                Some("json") => println!("{info}"),
                Some("yaml") => print!(
                    "{}",
                    serde_saphyr::to_string(&info).map_err(|e| e.to_string())?
                ),
                Some(other) => return Err(format!("invalid output format: {other}")),
            }
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = run(cli).await {
        eprintln!("error execution phase: {e}");
        std::process::exit(1);
    }
}
