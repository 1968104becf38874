//! kube-controller-manager: upstream's flags, `--controllers` selection, leader election
//! on the `kube-system/kube-controller-manager` Lease, the secure port (10257), and the
//! controllers, each registered through a descriptor (`controller_descriptor.rs`, one
//! file per API group as upstream's `cmd/kube-controller-manager/app`).

mod apps;
mod autoscaling;
mod batch;
mod bootstrap;
mod certificates;
mod controller_descriptor;
mod core;
mod discovery;
mod flags;
mod policy;
mod rbac;
mod storage;

use apimachinery::duration::parse as duration;
use clap::Parser;
use controller_descriptor::ControllerContext;
use flags::Flags;
use std::sync::Arc;

async fn run(flags: Flags) -> Result<(), String> {
    let all = controller_descriptor::all();
    let controllers = controller_descriptor::enabled(&all, &flags.controllers)?;
    if flags.leader_elect && flags.leader_elect_resource_lock != "leases" {
        return Err(format!(
            "leaderElection.resourceLock: Unsupported value: {:?}: supported values: \"leases\"",
            flags.leader_elect_resource_lock
        ));
    }
    let agent = format!(
        "kube-controller-manager/v1.35.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let config = client_go::rest::config(flags.kubeconfig.as_deref(), &agent).await?;
    let client = kube::Client::try_from(config.clone()).map_err(|e| e.to_string())?;
    let root_ca = match &flags.root_ca_file {
        Some(p) => {
            Some(std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?)
        }
        None => None,
    };
    let id = client_go::leaderelection::identity();

    let mut registry = component_base::metrics::Registry::default();
    let process = component_base::metrics::ProcessMetrics::default();
    process.register(&mut registry);
    client_go::workqueue_metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let endpoints = component_base::serving::Endpoints {
        authorizer: None,
        api: None,
        live: Vec::new(),
        ready: Vec::new(),
        metrics: Arc::new(move || {
            process.refresh();
            client_go::workqueue_metrics::refresh();
            component_base::metrics::render(&registry)
        }),
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    flags
        .serving
        .serve(
            10257,
            "kube-controller-manager",
            &agent,
            endpoints,
            async move {
                let _ = stop_rx.changed().await;
            },
        )
        .await?;

    let lost: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = if flags.leader_elect {
        let cfg = client_go::leaderelection::Config {
            namespace: flags.leader_elect_resource_namespace.clone(),
            name: flags.leader_elect_resource_name.clone(),
            identity: id.clone(),
            lease_duration: duration(&flags.leader_elect_lease_duration)?,
            renew_deadline: duration(&flags.leader_elect_renew_deadline)?,
            retry_period: duration(&flags.leader_elect_retry_period)?,
        };
        tokio::select! {
            lost = client_go::leaderelection::acquire(client.clone(), cfg) => Box::pin(lost),
            _ = component_base::signals::shutdown_signal() => {
                let _ = stop_tx.send(true);
                return Ok(());
            }
        }
    } else {
        Box::pin(std::future::pending())
    };

    let limiter = Arc::new(client_go::flowcontrol::RateLimiter::new(
        flags.kube_api_qps,
        flags.kube_api_burst,
    ));
    // Upstream keeps the tokens in memory; ours go to a private directory the
    // client re-reads.
    let builder = if flags.use_service_account_credentials {
        let dir =
            std::env::temp_dir().join(format!("kube-controller-manager-{}", std::process::id()));
        client_go::clientbuilder::ClientBuilder::service_accounts(client.clone(), config, dir)
    } else {
        client_go::clientbuilder::ClientBuilder::root(client.clone())
    };
    let ctx = ControllerContext {
        informers: client_go::informer_factory::SharedInformerFactory::new(client.clone()),
        client,
        builder,
        root_ca,
        identity: id,
        limiter,
        enabled: controllers.iter().map(|d| d.name).collect(),
        flags,
    };
    let mut tasks = Vec::new();
    let (mut started, mut skipped) = (Vec::new(), Vec::new());
    for d in &controllers {
        let Some(constructor) = d.constructor else {
            skipped.push(d.name);
            continue;
        };
        if let Some(work) = constructor(&ctx).await? {
            tasks.push(tokio::spawn(work));
            started.push(d.name);
        }
    }
    // Every handler is registered: the informers start together (upstream's
    // `InformerFactory.Start`).
    ctx.informers.start();
    tracing::info!(controllers = ?skipped, "controllers not built yet; skipped");
    tracing::info!(controllers = ?started, "started controllers");
    let result = tokio::select! {
        _ = component_base::signals::shutdown_signal() => Ok(()),
        _ = lost => Err("leaderelection lost".to_string()),
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        t.abort();
    }
    ctx.builder.cleanup();
    result
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("kube-controller-manager", run(flags).await);
}
