//! The kube-scheduler (upstream `pkg/scheduler`): watches pending pods and nodes through
//! the apiserver, places each pod with the scheduling framework's plugins, and binds it.

pub mod apis;
pub mod backend;
pub mod eventhandlers;
pub mod framework;
pub mod metrics;
pub mod schedule_one;
pub mod scheduler;

use apis::config::KubeSchedulerConfiguration;
use client_go::events::Recorder;
use client_go::flowcontrol::RateLimiter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A running scheduler: `ready` once its informers have synced; stopping it ends the
/// scheduling loop.
pub struct Running {
    pub ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &self.watchers {
            w.abort();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks every profile's plugins and their args, as the binary does before connecting.
pub fn validate(cfg: &KubeSchedulerConfiguration) -> Result<(), String> {
    for p in &cfg.profiles {
        framework::runtime::Framework::new(p, &framework::Handle::default())
            .map_err(|e| format!("initializing profile {:?}: {e}", p.scheduler_name))?;
    }
    Ok(())
}

/// Starts the informers and the scheduling loop (on its own thread, with a pool of
/// `parallelism` threads for filters and scores); pods are scheduled while `leading`.
pub fn start(
    cfg: &KubeSchedulerConfiguration,
    client: kube::Client,
    identity: &str,
    leading: Arc<AtomicBool>,
) -> Result<Running, String> {
    let limiter = Arc::new(RateLimiter::new(
        cfg.client_connection.qps,
        cfg.client_connection.burst,
    ));
    let recorder = Recorder::new(
        client.clone(),
        "default-scheduler",
        identity,
        limiter.clone(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    let sched =
        scheduler::Scheduler::new(cfg, client.clone(), runtime, tx.clone(), recorder, limiter)?;
    let ready = sched.ready.clone();
    let stop = Arc::new(AtomicBool::new(false));
    // Upstream's `parallelism` counts goroutines; OS threads beyond the cores only spin.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads((cfg.parallelism.max(1) as usize).min(cores))
        .thread_name(|i| format!("scheduler-worker-{i}"))
        .build()
        .map_err(|e| format!("starting the worker pool: {e}"))?;
    let watchers = vec![
        tokio::spawn(eventhandlers::watch_pods(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_nodes(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_pdbs(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_claims(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_volumes(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_classes(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_csi_nodes(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_csi_drivers(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_capacities(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_services(client.clone(), tx.clone())),
        tokio::spawn(eventhandlers::watch_replication_controllers(
            client.clone(),
            tx.clone(),
        )),
        tokio::spawn(eventhandlers::watch_replica_sets(
            client.clone(),
            tx.clone(),
        )),
        tokio::spawn(eventhandlers::watch_stateful_sets(client, tx)),
    ];
    let loop_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("scheduling-loop".into())
        .spawn(move || {
            let run =
                std::panic::AssertUnwindSafe(|| pool.install(|| sched.run(rx, loop_stop, leading)));
            if std::panic::catch_unwind(run).is_err() {
                // As upstream's scheduler crashes, so that a supervisor restarts it.
                tracing::error!("the scheduling loop panicked; exiting");
                std::process::exit(1);
            }
        })
        .map_err(|e| format!("starting the scheduling loop: {e}"))?;
    Ok(Running {
        ready,
        stop,
        watchers,
        thread: Some(thread),
    })
}
