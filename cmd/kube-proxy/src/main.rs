//! kube-proxy: upstream's flags and `--config` (`KubeProxyConfiguration`; flags given on
//! the command line win), then the proxier, the health server (10256) and the metrics
//! server (10249) until SIGTERM.

use clap::Parser;
use component_base::logs::LoggingOptions;
use proxy::config::KubeProxyConfiguration;
use std::path::PathBuf;
use std::sync::Arc;

/// The Kubernetes network proxy runs on each node. This reflects services as defined in
/// the Kubernetes API on each node and can do simple TCP, UDP, and SCTP stream
/// forwarding across a set of backends.
#[derive(Parser, Debug)]
#[command(name = "kube-proxy", version = "v1.35.0")]
struct Flags {
    /// The path to the configuration file.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// Path to kubeconfig file with authorization information.
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// Which proxy mode to use: on Linux this can be 'iptables' (default) or 'nftables'.
    #[arg(long = "proxy-mode")]
    proxy_mode: Option<String>,
    /// The CIDR range of the pods in the cluster (comma-separated for dual-stack).
    #[arg(long = "cluster-cidr")]
    cluster_cidr: Option<String>,
    /// If non-empty, will be used as the name of the Node that kube-proxy is running on.
    #[arg(long = "hostname-override")]
    hostname_override: Option<String>,
    /// The IP address and port for the health check server to serve on.
    #[arg(long = "healthz-bind-address")]
    healthz_bind_address: Option<String>,
    /// The IP address and port for the metrics server to serve on.
    #[arg(long = "metrics-bind-address")]
    metrics_bind_address: Option<String>,
    /// SNAT all traffic sent via Service cluster IPs.
    #[arg(long = "masquerade-all", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    masquerade_all: Option<bool>,
    /// The bit of the fwmark space to mark packets requiring SNAT with.
    #[arg(long = "iptables-masquerade-bit")]
    iptables_masquerade_bit: Option<i32>,
    /// An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed.
    #[arg(long = "iptables-sync-period")]
    iptables_sync_period: Option<String>,
    /// The minimum period between iptables rule resyncs (e.g. '5s', '1m', '2h22m').
    #[arg(long = "iptables-min-sync-period")]
    iptables_min_sync_period: Option<String>,
    /// If true cleanup iptables and nftables rules and exit.
    #[arg(long = "cleanup", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    cleanup: bool,
    /// If set, write the default configuration values to this file and exit.
    #[arg(long = "write-config-to")]
    write_config_to: Option<PathBuf>,
    #[command(flatten)]
    logging: LoggingOptions,
}

fn configuration(f: &Flags) -> Result<KubeProxyConfiguration, String> {
    let mut c = match &f.config {
        Some(p) => KubeProxyConfiguration::load(p)?,
        None => KubeProxyConfiguration::default(),
    };
    if let Some(v) = &f.kubeconfig {
        c.client_connection.kubeconfig = v.display().to_string();
    }
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = $flag.clone() {
                $field = v;
            }
        };
    }
    set!(f.proxy_mode, c.mode);
    set!(f.cluster_cidr, c.cluster_cidr);
    set!(f.hostname_override, c.hostname_override);
    set!(f.healthz_bind_address, c.healthz_bind_address);
    set!(f.metrics_bind_address, c.metrics_bind_address);
    set!(f.masquerade_all, c.iptables.masquerade_all);
    set!(f.iptables_masquerade_bit, c.iptables.masquerade_bit);
    set!(f.iptables_sync_period, c.iptables.sync_period);
    set!(f.iptables_min_sync_period, c.iptables.min_sync_period);
    c.validate()?;
    Ok(c)
}

fn addr(s: &str, default_port: u16) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .or_else(|_| format!("{s}:{default_port}").parse())
        .map_err(|_| format!("invalid bind address {s:?}"))
}

async fn run(f: Flags) -> Result<(), String> {
    let cfg = configuration(&f)?;
    if f.cleanup {
        // Both modes' rules go, whichever mode ran (switching modes starts from clean).
        proxy::iptables::cleanup()?;
        proxy::nftables::cleanup()?;
        tracing::info!("Cleaned up iptables and nftables rules");
        return Ok(());
    }
    if let Some(out) = &f.write_config_to {
        let text = serde_json_text(&cfg);
        std::fs::write(out, text).map_err(|e| format!("writing {}: {e}", out.display()))?;
        return Ok(());
    }
    let node = if cfg.hostname_override.is_empty() {
        component_base::hostname()
    } else {
        cfg.hostname_override.clone()
    };
    let agent = format!(
        "kube-proxy/v1.35.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let kubeconfig = Some(cfg.client_connection.kubeconfig.as_str())
        .filter(|k| !k.is_empty())
        .map(PathBuf::from);
    let client = client_go::rest::client(kubeconfig.as_deref(), &agent).await?;
    let dur = |s: &str| proxy::config::duration(s);
    let (sync, min_sync, masq_all, bit) = if cfg.proxy_mode() == "nftables" {
        (
            dur(&cfg.nftables.sync_period),
            dur(&cfg.nftables.min_sync_period),
            cfg.nftables.masquerade_all || cfg.iptables.masquerade_all,
            cfg.nftables.masquerade_bit,
        )
    } else {
        (
            dur(&cfg.iptables.sync_period),
            dur(&cfg.iptables.min_sync_period),
            cfg.iptables.masquerade_all,
            cfg.iptables.masquerade_bit,
        )
    };
    let health = Arc::new(proxy::healthz::Health::new(sync));
    if !cfg.healthz_bind_address.is_empty() {
        let a = addr(&cfg.healthz_bind_address, 10256)?;
        let h = health.clone();
        let l =
            std::net::TcpListener::bind(a).map_err(|e| format!("failed to listen on {a}: {e}"))?;
        drop(l);
        tokio::spawn(async move {
            if let Err(e) = proxy::healthz::serve_health(a, h).await {
                tracing::error!(error = %e, "healthz server failed");
            }
        });
    }
    if !cfg.metrics_bind_address.is_empty() {
        let a = addr(&cfg.metrics_bind_address, 10249)?;
        tokio::spawn(async move {
            if let Err(e) = proxy::healthz::serve_metrics(a).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    tracing::info!(mode = cfg.proxy_mode(), node, "Using proxy mode");
    let proxier = Arc::new(proxy::Proxier {
        mode: cfg.proxy_mode().to_string(),
        options: proxy::Options {
            node_name: node,
            cluster_cidrs: cfg
                .cluster_cidr
                .split(',')
                .filter(|c| !c.is_empty() && !c.contains(':'))
                .map(String::from)
                .collect(),
            masquerade_all: masq_all,
            masquerade_bit: bit,
        },
        sync_period: sync,
        min_sync_period: min_sync,
        applied: Default::default(),
        nft_applied: Default::default(),
        health,
    });
    tokio::select! {
        _ = proxier.run(client) => Ok(()),
        _ = component_base::signals::shutdown_signal() => Ok(()),
    }
}

fn serde_json_text(cfg: &KubeProxyConfiguration) -> String {
    proxy::config::to_yaml(cfg)
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("kube-proxy", run(flags).await);
}
