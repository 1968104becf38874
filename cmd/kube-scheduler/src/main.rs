//! kube-scheduler: upstream's flags and `--config` file, leader election, the secure
//! health/metrics endpoint, and the scheduler itself.

use clap::Parser;
use component_base::logs::LoggingOptions;
use scheduler::apis::config::{KubeSchedulerConfiguration, parse_duration};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The Kubernetes scheduler is a control plane process which assigns Pods to Nodes. The
/// scheduler determines which Nodes are valid placements for each Pod in the scheduling
/// queue according to constraints and available resources. The scheduler then ranks each
/// valid Node and binds the Pod to a suitable Node.
#[derive(Parser, Debug)]
#[command(name = "kube-scheduler", version = "v1.35.0")]
struct Flags {
    /// The path to the configuration file.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// DEPRECATED: path to kubeconfig file with authorization and master location information. This parameter is ignored if a config file is specified in --config.
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// DEPRECATED: QPS to use while talking with kubernetes apiserver. This parameter is ignored if a config file is specified in --config.
    #[arg(long = "kube-api-qps")]
    kube_api_qps: Option<f32>,
    /// DEPRECATED: burst to use while talking with kubernetes apiserver. This parameter is ignored if a config file is specified in --config.
    #[arg(long = "kube-api-burst")]
    kube_api_burst: Option<u32>,
    /// DEPRECATED: content type of requests sent to apiserver. This parameter is ignored if a config file is specified in --config.
    #[arg(long = "kube-api-content-type")]
    kube_api_content_type: Option<String>,
    /// Start a leader election client and gain leadership before executing the main loop. Enable this when running replicated components for high availability.
    #[arg(long = "leader-elect", action = clap::ArgAction::Set)]
    leader_elect: Option<bool>,
    /// The duration that non-leader candidates will wait after observing a leadership renewal until attempting to acquire leadership of a led but unrenewed leader slot.
    #[arg(long = "leader-elect-lease-duration")]
    leader_elect_lease_duration: Option<String>,
    /// The interval between attempts by the acting master to renew a leadership slot before it stops leading.
    #[arg(long = "leader-elect-renew-deadline")]
    leader_elect_renew_deadline: Option<String>,
    /// The duration the clients should wait between attempting acquisition and renewal of a leadership.
    #[arg(long = "leader-elect-retry-period")]
    leader_elect_retry_period: Option<String>,
    /// The type of resource object that is used for locking during leader election. Supported options are 'leases'.
    #[arg(long = "leader-elect-resource-lock")]
    leader_elect_resource_lock: Option<String>,
    /// The name of resource object that is used for locking during leader election.
    #[arg(long = "leader-elect-resource-name")]
    leader_elect_resource_name: Option<String>,
    /// The namespace of resource object that is used for locking during leader election.
    #[arg(long = "leader-elect-resource-namespace")]
    leader_elect_resource_namespace: Option<String>,
    #[command(flatten)]
    serving: client_go::secure::SecureServingFlags,
    /// If set, write the configuration values to this file and exit.
    #[arg(long = "write-config-to")]
    write_config_to: Option<PathBuf>,
    #[command(flatten)]
    logging: LoggingOptions,
}

/// The configuration: `--config`, or upstream's defaults with the deprecated flags.
fn configuration(flags: &Flags) -> Result<KubeSchedulerConfiguration, String> {
    let mut cfg = match &flags.config {
        Some(path) => KubeSchedulerConfiguration::load(path)?,
        None => KubeSchedulerConfiguration::default(),
    };
    if flags.config.is_none() {
        let cc = &mut cfg.client_connection;
        if let Some(k) = &flags.kubeconfig {
            cc.kubeconfig = k.display().to_string();
        }
        if let Some(q) = flags.kube_api_qps {
            cc.qps = q;
        }
        if let Some(b) = flags.kube_api_burst {
            cc.burst = b;
        }
        if let Some(t) = &flags.kube_api_content_type {
            cc.content_type = t.clone();
        }
        let le = &mut cfg.leader_election;
        if let Some(v) = flags.leader_elect {
            le.leader_elect = v;
        }
        for (flag, field) in [
            (&flags.leader_elect_lease_duration, &mut le.lease_duration),
            (&flags.leader_elect_renew_deadline, &mut le.renew_deadline),
            (&flags.leader_elect_retry_period, &mut le.retry_period),
            (&flags.leader_elect_resource_lock, &mut le.resource_lock),
            (&flags.leader_elect_resource_name, &mut le.resource_name),
            (
                &flags.leader_elect_resource_namespace,
                &mut le.resource_namespace,
            ),
        ] {
            if let Some(v) = flag {
                *field = v.clone();
            }
        }
    }
    let le = &cfg.leader_election;
    if le.leader_elect && le.resource_lock != "leases" {
        return Err(format!(
            "leaderElection.resourceLock: Unsupported value: {:?}: supported values: \"leases\"",
            le.resource_lock
        ));
    }
    Ok(cfg)
}

async fn run(flags: Flags) -> Result<(), String> {
    let cfg = configuration(&flags)?;
    scheduler::validate(&cfg)?;
    if let Some(out) = &flags.write_config_to {
        std::fs::write(out, format!("{cfg:#?}\n"))
            .map_err(|e| format!("writing {}: {e}", out.display()))?;
        return Ok(());
    }
    let kubeconfig = Some(cfg.client_connection.kubeconfig.as_str())
        .filter(|k| !k.is_empty())
        .map(PathBuf::from);
    let agent = format!(
        "kube-scheduler/v1.35.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let client = client_go::rest::client(kubeconfig.as_deref(), &agent).await?;
    let id = client_go::leaderelection::identity();

    let registry = scheduler::metrics::METRICS.registry();
    let process = component_base::metrics::ProcessMetrics::default();
    let mut registry = registry;
    process.register(&mut registry);
    let registry = Arc::new(registry);
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ready_check = ready.clone();
    let endpoints = component_base::serving::Endpoints {
        authorizer: None,
        api: None,
        live: Vec::new(),
        ready: vec![(
            "sched-handler-sync".into(),
            Arc::new(move || {
                if ready_check.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("informers not synced".into())
                }
            }),
        )],
        metrics: Arc::new(move || {
            process.refresh();
            component_base::metrics::render(&registry)
        }),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop = stop_rx.clone();
    flags
        .serving
        .serve(10259, "kube-scheduler", &agent, endpoints, async move {
            let _ = stop.changed().await;
        })
        .await?;

    // Informers start and sync before leader election, so that a standby is ready and
    // takes over with a warm cache; it schedules only once it leads.
    let le = &cfg.leader_election;
    let leading = Arc::new(std::sync::atomic::AtomicBool::new(!le.leader_elect));
    let running = scheduler::start(&cfg, client.clone(), &id, leading.clone())?;
    let synced = running.ready.clone();
    tokio::spawn(async move {
        while !synced.load(Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        ready.store(true, Ordering::Relaxed);
    });
    let lost: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = if le.leader_elect {
        let lcfg = client_go::leaderelection::Config {
            namespace: le.resource_namespace.clone(),
            name: le.resource_name.clone(),
            identity: id.clone(),
            lease_duration: parse_duration(&le.lease_duration)?,
            renew_deadline: parse_duration(&le.renew_deadline)?,
            retry_period: parse_duration(&le.retry_period)?,
        };
        tokio::select! {
            lost = client_go::leaderelection::acquire(client.clone(), lcfg) => {
                leading.store(true, Ordering::Relaxed);
                Box::pin(lost)
            }
            _ = component_base::signals::shutdown_signal() => {
                let _ = stop_tx.send(true);
                tokio::task::spawn_blocking(move || running.stop()).await.ok();
                return Ok(());
            }
        }
    } else {
        Box::pin(std::future::pending())
    };
    let result = tokio::select! {
        _ = component_base::signals::shutdown_signal() => Ok(()),
        _ = lost => Err("leaderelection lost".to_string()),
    };
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .ok();
    result
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("kube-scheduler", run(flags).await);
}
