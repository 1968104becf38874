//! kubeadm: upstream's commands and flags for bootstrapping a cluster. Implemented so
//! far: `init phase certs|kubeconfig|etcd|control-plane|upload-config|bootstrap-token`,
//! `join` of a worker, `reset`, `certs check-expiration|renew`, `token
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
    Init(InitCmd),
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
    /// Print the version of kubeadm
    Version {
        /// Output format; available options are 'yaml', 'json' and 'short'
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
}

#[derive(Args)]
struct InitCmd {
    #[command(subcommand)]
    phase: Option<InitPhaseCmd>,
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
    /// Create a new control plane instance on this node (not available yet).
    #[arg(long = "control-plane")]
    control_plane: bool,
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

async fn join(j: JoinCmd) -> Result<(), String> {
    if j.control_plane {
        return Err(
            "'kubeadm join --control-plane' is not available in this build yet; join workers only"
                .into(),
        );
    }
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
        Command::Init(InitCmd { phase: None }) => Err(
            "the full 'kubeadm init' workflow is not available in this build yet; run its phases with 'kubeadm init phase certs|kubeconfig|etcd|control-plane|upload-config|mark-control-plane|bootstrap-token'".into(),
        ),
        Command::Init(InitCmd {
            phase: Some(InitPhaseCmd::Phase { phase }),
        }) => match phase {
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
                app::phases::bootstraptoken::run(&c, &cfg, &ca).await.map(|_| ())
            }
        },
        Command::Join(j) => join(j).await,
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
