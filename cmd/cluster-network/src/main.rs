//! cluster-network: the pod network add-on (the role flannel's `host-gw` backend plays
//! in upstream clusters), run as a host-network DaemonSet on every node. It reads the
//! Nodes' pod CIDRs (assigned by the controller-manager's node IPAM) and:
//! - writes this node's CNI configuration (`bridge` with `host-local` IPAM over its pod
//!   CIDR, `portmap`, `loopback`) into `--cni-conf-dir`, which the runtime picks up, so
//!   the node turns Ready once it has a pod network;
//! - routes every other node's pod CIDR through that node's InternalIP on the shared
//!   network (`ip route replace <cidr> via <ip> proto 201`), removing routes of nodes
//!   that went away (the routes it owns carry its protocol number);
//! - turns on IPv4 forwarding, so a node forwards to and from its pods.
//!
//! What to do is decided by pure functions ([`desired_routes`], [`cni_config`],
//! [`route_changes`]); applying it is a few `ip` invocations.

mod routes;

use clap::Parser;
use client_go::informer::Informer;
use component_base::logs::LoggingOptions;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use std::path::PathBuf;
use std::time::Duration;

pub use routes::{cni_config, desired_routes, route_changes};

/// Routes each node's pod CIDR over the nodes' network and writes the node's CNI config.
#[derive(Parser, Debug)]
#[command(name = "cluster-network", version = "v1.35.0")]
struct Flags {
    /// Path to a kubeconfig file (in-cluster configuration when omitted).
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// This node's name.
    #[arg(long = "node-name", env = "NODE_NAME")]
    node_name: String,
    /// Where the runtime reads CNI network configurations from.
    #[arg(long = "cni-conf-dir", default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// The bridge the node's pods attach to.
    #[arg(long = "bridge", default_value = "cni0")]
    bridge: String,
    /// How often routes are checked against the Nodes even without a change.
    #[arg(long = "resync-period", default_value = "30s")]
    resync_period: String,
    #[command(flatten)]
    logging: LoggingOptions,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let o = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Makes this node's routes and CNI configuration match the Nodes.
fn sync(f: &Flags, nodes: &[std::sync::Arc<Node>]) -> Result<(), String> {
    let nodes: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    if let Some(me) = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(f.node_name.as_str()))
        && let Some(cidr) = me.spec.as_ref().and_then(|s| s.pod_cidr.clone())
    {
        let want = cni_config(&cidr, &f.bridge).to_string();
        let path = f.cni_conf_dir.join("10-cluster-network.conflist");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            std::fs::create_dir_all(&f.cni_conf_dir)
                .map_err(|e| format!("{}: {e}", f.cni_conf_dir.display()))?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &want)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!(pod_cidr = cidr, path = %path.display(), "wrote the CNI configuration");
        }
    }
    let desired = desired_routes(&nodes, &f.node_name);
    let current = ip(&["route", "show", "proto", routes::PROTO])?;
    let (add, remove) = route_changes(&desired, &current);
    for (cidr, via) in add {
        ip(&[
            "route",
            "replace",
            &cidr,
            "via",
            &via,
            "proto",
            routes::PROTO,
        ])?;
        tracing::info!(cidr, via, "route added");
    }
    for cidr in remove {
        ip(&["route", "del", &cidr, "proto", routes::PROTO])?;
        tracing::info!(cidr, "route removed");
    }
    Ok(())
}

async fn run(f: Flags) -> Result<(), String> {
    let resync = apimachinery::duration::parse(&f.resync_period)
        .map_err(|e| format!("--resync-period: {e}"))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| format!("enabling IPv4 forwarding: {e}"))?;
    let agent = format!(
        "cluster-network/v1.35.0 ({}/{})",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let client = client_go::rest::client(f.kubeconfig.as_deref(), &agent).await?;
    let nodes = Informer::new(Api::<Node>::all(client));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    nodes.add_handler(move |_, _| {
        let _ = tx.send(());
    });
    nodes.run();
    nodes.synced().await;
    tracing::info!(node = f.node_name, "syncing pod routes");
    loop {
        if let Err(e) = sync(&f, &nodes.store.state()) {
            tracing::warn!(error = e, "sync failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::time::sleep(resync) => {}
            _ = component_base::signals::shutdown_signal() => return Ok(()),
        }
        // Collapse a burst of Node updates into one sync.
        while rx.try_recv().is_ok() {}
    }
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("cluster-network", run(flags).await);
}
