//! csi-hostpath: a CSI driver of our own for node-local persistent volumes (the role
//! kubernetes-csi's csi-driver-host-path plays in upstream's tests and kind clusters).
//! Each volume is a sparse ext4 image under `--statedir`, attached to a loop device on
//! the node, so a volume has a real size (`df` in the pod shows it) and grows online.
//! Serves the Identity, Controller and Node services on `--endpoint`; every call is
//! logged (`csi call method=… volume=…`), so the order the kubelet and the sidecars
//! call in can be checked.

mod controller;
mod disk;
mod identity;
mod node;
mod registration;
mod sidecars;
mod state;

use clap::Parser;
use component_base::logs::LoggingOptions;
use std::path::PathBuf;
use std::sync::Arc;

pub const VERSION: &str = "v1.35.0";

/// A CSI driver for node-local volumes on loop-mounted ext4 images.
#[derive(Parser, Debug)]
#[command(name = "csi-hostpath", version = VERSION)]
struct Flags {
    /// CSI endpoint (a unix socket).
    #[arg(long, default_value = "unix:///csi/csi.sock")]
    endpoint: String,
    /// Name of the driver.
    #[arg(long, default_value = "hostpath.csi.k8s.io")]
    drivername: String,
    /// The node this instance runs on (the Node object's name).
    #[arg(long)]
    nodeid: String,
    /// Directory for the volumes' images and records.
    #[arg(long, default_value = "/csi-data-dir")]
    statedir: PathBuf,
    /// Limit of volumes per node (0: no limit), reported in NodeGetInfo.
    #[arg(long, default_value_t = 0)]
    maxvolumespernode: i64,
    /// Advertise ControllerPublishVolume, so the attach/detach controller creates
    /// VolumeAttachments for this driver's volumes.
    #[arg(long = "enable-attach")]
    enable_attach: bool,
    /// Register with the kubelet (the node-driver-registrar role): the driver's socket as
    /// the kubelet sees it.
    #[arg(long = "kubelet-registration-path")]
    kubelet_registration_path: Option<String>,
    /// The kubelet's plugin registration directory as this process sees it.
    #[arg(long = "plugin-registration-path", default_value = "/registration")]
    plugin_registration_path: PathBuf,
    /// Path to a kubeconfig for the provisioner and resizer (in-cluster configuration
    /// when unset).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Provision and delete this node's volumes (external-provisioner's role with
    /// `--node-deployment`: claims the scheduler placed on this node, `--nodeid` being
    /// the Node's name).
    #[arg(long = "enable-provisioner")]
    enable_provisioner: bool,
    /// Attach and detach this node's VolumeAttachments of the driver
    /// (external-attacher's role; with `--enable-attach` through ControllerPublishVolume).
    #[arg(long = "enable-attacher")]
    enable_attacher: bool,
    /// Publish this node's free space per StorageClass as CSIStorageCapacity objects in
    /// the namespace the `NAMESPACE` environment variable names (external-provisioner's
    /// `--enable-capacity`).
    #[arg(long = "enable-capacity")]
    enable_capacity: bool,
    /// How often capacity is asked for again.
    #[arg(long = "capacity-poll-interval", default_value = "1m")]
    capacity_poll_interval: String,
    /// Grow this node's volumes when their claims ask for more (external-resizer's role).
    #[arg(long = "enable-resizer")]
    enable_resizer: bool,
    /// Filesystem type of provisioned volumes whose class names none
    /// (`csi.storage.k8s.io/fstype`); empty leaves it to the driver.
    #[arg(long = "default-fstype", default_value = "")]
    default_fstype: String,
    /// Pass the claim's and volume's names to CreateVolume
    /// (`csi.storage.k8s.io/pvc/name`, `pvc/namespace`, `pv/name`).
    #[arg(long = "extra-create-metadata")]
    extra_create_metadata: bool,
    #[command(flatten)]
    logging: LoggingOptions,
}

/// What the three services share.
pub struct Driver {
    pub name: String,
    pub node_id: String,
    pub statedir: PathBuf,
    pub max_volumes: i64,
    pub attach: bool,
    pub store: state::Store,
    /// One volume operation at a time: staging, expansion and deletion touch the same
    /// images and mounts.
    pub lock: tokio::sync::Mutex<()>,
}

impl Driver {
    pub fn log_call(&self, method: &str, volume: &str) {
        tracing::info!(method, volume, "csi call");
    }
}

async fn serve(f: Flags) -> Result<(), String> {
    let path = f.endpoint.strip_prefix("unix://").ok_or_else(|| {
        format!(
            "--endpoint {:?}: only unix:// sockets are supported",
            f.endpoint
        )
    })?;
    let path = PathBuf::from(path);
    if f.nodeid.is_empty() {
        return Err("--nodeid is required".into());
    }
    let store = state::Store::open(&f.statedir)
        .map_err(|e| format!("--statedir {}: {e}", f.statedir.display()))?;
    let driver = Arc::new(Driver {
        name: f.drivername.clone(),
        node_id: f.nodeid.clone(),
        statedir: f.statedir.clone(),
        max_volumes: f.maxvolumespernode,
        attach: f.enable_attach,
        store,
        lock: tokio::sync::Mutex::new(()),
    });
    let incoming = component_base::grpc::unix_incoming(&path)?;
    let registration_socket = f
        .plugin_registration_path
        .join(format!("{}-reg.sock", f.drivername));
    if let Some(kubelet_path) = &f.kubelet_registration_path {
        let socket = registration_socket.clone();
        let registrations = component_base::grpc::unix_incoming(&socket)?;
        let service = registration::RegistrationService {
            driver: f.drivername.clone(),
            endpoint: kubelet_path.clone(),
        };
        tracing::info!(socket = %socket.display(), "serving plugin registration");
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(
                    csi::pluginregistration::registration_server::RegistrationServer::new(service),
                )
                .serve_with_incoming_shutdown(
                    registrations,
                    component_base::signals::shutdown_signal(),
                )
                .await;
            if let Err(e) = served {
                tracing::error!("plugin registration: {e}");
            }
        });
    }
    let capacity = if f.enable_capacity {
        let namespace = std::env::var("NAMESPACE").ok().filter(|n| !n.is_empty()).ok_or(
            "--enable-capacity needs the NAMESPACE environment variable (the namespace the driver runs in)",
        )?;
        let poll = apimachinery::duration::parse(&f.capacity_poll_interval).map_err(|e| {
            format!(
                "--capacity-poll-interval {:?}: {e}",
                f.capacity_poll_interval
            )
        })?;
        Some((namespace, poll))
    } else {
        None
    };
    if f.enable_provisioner || f.enable_resizer || f.enable_attacher || capacity.is_some() {
        let (endpoint, node) = (f.endpoint.clone(), f.nodeid.clone());
        let (provision, resize, attach) =
            (f.enable_provisioner, f.enable_resizer, f.enable_attacher);
        let (fstype, extra) = (f.default_fstype.clone(), f.extra_create_metadata);
        let agent = format!("csi-hostpath/{VERSION}");
        let client = client_go::rest::client(f.kubeconfig.as_deref(), &agent).await?;
        tokio::spawn(async move {
            // The driver's own socket, once it serves.
            let ctx = loop {
                match sidecars::Context::new(client.clone(), &endpoint, &node).await {
                    Ok(c) => break Arc::new(c),
                    Err(e) => tracing::debug!(error = e, "waiting for the driver"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            };
            if provision {
                sidecars::provisioner::Provisioner::start(ctx.clone(), fstype, extra);
            }
            if attach {
                sidecars::attacher::Attacher::start(ctx.clone());
            }
            if let Some((namespace, poll)) = capacity {
                sidecars::capacity::CapacityPublisher::start(ctx.clone(), namespace, poll);
            }
            if resize {
                sidecars::resizer::Resizer::start(ctx);
            }
        });
    }
    tracing::info!(
        endpoint = f.endpoint,
        driver = f.drivername,
        node = f.nodeid,
        version = VERSION,
        "serving CSI"
    );
    let result = tonic::transport::Server::builder()
        .add_service(csi::v1::identity_server::IdentityServer::new(
            identity::IdentityService(driver.clone()),
        ))
        .add_service(csi::v1::controller_server::ControllerServer::new(
            controller::ControllerService(driver.clone()),
        ))
        .add_service(csi::v1::node_server::NodeServer::new(node::NodeService(
            driver,
        )))
        .serve_with_incoming_shutdown(incoming, component_base::signals::shutdown_signal())
        .await
        .map_err(|e| e.to_string());
    // Gone sockets tell the kubelet the driver is gone.
    let _ = std::fs::remove_file(&path);
    if f.kubelet_registration_path.is_some() {
        let _ = std::fs::remove_file(&registration_socket);
    }
    result
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    if let Err(e) = serve(flags).await {
        tracing::error!("{e}");
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
