//! Starting the kubelet (upstream `cmd/kubelet/app/server.go` RunKubelet + `kubelet.go`
//! Run): register the node, then run the pod sources, PLEG, node status and lease loops,
//! housekeeping and the servers until shutdown.

use crate::kubelet::Kubelet;
use crate::nodestatus::{NodeStatusConfig, Reporter, StatusInputs};
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    pub node_labels: std::collections::BTreeMap<String, String>,
    pub tls: Arc<rustls::ServerConfig>,
}

pub async fn run(
    k: Arc<Kubelet>,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let cfg = &k.cfg;
    // What the runtime can enforce, for admission (it does not change while we run).
    if let Ok(st) = k.runtime.status().await {
        let strict = st.features.is_some_and(|f| f.supplemental_groups_policy);
        k.strict_supplemental_groups
            .store(strict, std::sync::atomic::Ordering::Relaxed);
    }
    let ns_cfg = Arc::new(NodeStatusConfig {
        node_name: k.node_name.clone(),
        node_ip: k.node_ip.clone(),
        hostname: k.node_name.clone(),
        max_pods: cfg.max_pods,
        root_dir: k.root.clone(),
        port: cfg.port,
        register_with_taints: cfg.register_with_taints.clone(),
        eviction_memory: cfg
            .eviction_hard
            .get("memory.available")
            .map_or(0, |q| crate::nodestatus::quantity_bytes(q)),
        reserved: cfg
            .system_reserved
            .iter()
            .chain(cfg.kube_reserved.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        provider_id: cfg.provider_id.clone(),
        labels: opts.node_labels.clone(),
    });
    crate::metrics::METRICS
        .node_name
        .get_or_create(&crate::metrics::NodeLabels {
            node: k.node_name.clone(),
        })
        .set(1);
    if cfg.enable_server {
        let addr: std::net::SocketAddr = format!("{}:{}", cfg.address, cfg.port)
            .parse()
            .map_err(|e| format!("invalid address {}:{}: {e}", cfg.address, cfg.port))?;
        let listener_check = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("failed to listen on {addr}: {e}"))?;
        drop(listener_check);
        let kk = k.clone();
        let tls = opts.tls.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::server::serve(kk, addr, tls).await {
                tracing::error!(error = %e, "kubelet server failed");
            }
        });
    }
    if cfg.healthz_port > 0 {
        let addr: std::net::SocketAddr =
            format!("{}:{}", cfg.healthz_bind_address, cfg.healthz_port)
                .parse()
                .map_err(|e| format!("invalid healthz address: {e}"))?;
        let kk = k.clone();
        tokio::spawn(async move {
            let healthy: Arc<dyn Fn() -> Result<(), String> + Send + Sync> =
                Arc::new(move || kk.health.check());
            if let Err(e) = crate::server::serve_healthz(addr, healthy).await {
                tracing::error!(error = %e, "healthz server failed");
            }
        });
    }
    // The kubepods hierarchy before any pod (upstream `containerManager.Start`).
    let mut capacity = crate::nodestatus::machine_capacity(&k.root, cfg.max_pods);
    if let Some(cpu) = capacity.get_mut("cpu") {
        *cpu *= 1000;
    }
    k.cm.start(&capacity)?;
    // Pod sources.
    k.pods.run();
    k.services.run();
    let kk = k.clone();
    k.pods.add_handler(move |p, _| {
        // A mirror pod's change (made, deleted, recreated) is its static pod's to handle,
        // as upstream's pod manager hands mirror updates to the static pod's worker.
        let uid = if crate::kubelet::is_mirror(p) {
            kk.static_pod_of(p)
        } else {
            p.metadata.uid.clone()
        };
        if let Some(uid) = uid {
            kk.dispatch(&uid);
        }
    });
    if !cfg.static_pod_path.is_empty() {
        let dir = std::path::PathBuf::from(&cfg.static_pod_path);
        tokio::spawn(crate::config::run(
            k.clone(),
            dir,
            Kubelet::duration_of(&cfg.file_check_frequency),
        ));
    }
    // Node registration, status and lease.
    if cfg.register_node {
        let client = k.client.clone();
        let kk = k.clone();
        let ns_cfg2 = ns_cfg.clone();
        tokio::spawn(async move {
            loop {
                match crate::nodestatus::register(&client, &ns_cfg2).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = e, "Unable to register node with API server"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            node_loops(kk, ns_cfg2).await;
        });
    }
    // CSI drivers announce themselves in <root-dir>/plugins_registry.
    tokio::spawn(crate::pluginmanager::run(
        k.root.join("plugins_registry"),
        k.volumes.csi.drivers.clone(),
    ));
    tokio::spawn(crate::volume::stats::run(k.clone()));
    tokio::spawn(crate::pleg::run(k.clone()));
    crate::nodeshutdown::start(k.clone()).await;
    // Validated at start (KubeletConfiguration::validate).
    if let Ok(max) = crate::logs::max_bytes(&cfg.container_log_max_size) {
        let files = cfg.container_log_max_files.max(2) as usize;
        let interval = Kubelet::duration_of(&cfg.container_log_monitor_interval);
        tokio::spawn(crate::logs::run(k.clone(), max, files, interval));
    }
    tokio::spawn(crate::eviction::run(k.clone(), k.pressure.clone()));
    tokio::spawn(housekeeping(k.clone()));
    shutdown.await;
    Ok(())
}

impl Kubelet {
    pub fn duration_of(s: &str) -> Duration {
        crate::apis::config::KubeletConfiguration::duration(s)
    }
}

async fn node_loops(k: Arc<Kubelet>, ns_cfg: Arc<NodeStatusConfig>) {
    let update =
        Kubelet::duration_of(&k.cfg.node_status_update_frequency).max(Duration::from_secs(1));
    let report = Kubelet::duration_of(&k.cfg.node_status_report_frequency);
    let lease_duration = k.cfg.node_lease_duration_seconds;
    // Lease: renewed every quarter of its duration (10 s by default).
    let kk = k.clone();
    tokio::spawn(async move {
        let renew = Duration::from_secs((lease_duration.max(4) / 4) as u64);
        let mut uid = None;
        loop {
            if uid.is_none() {
                uid = kk.node().await.and_then(|n| n.metadata.uid);
            }
            if let Err(e) = crate::nodestatus::renew_lease(
                &kk.client,
                &kk.node_name,
                uid.as_deref(),
                lease_duration,
            )
            .await
            {
                tracing::warn!(error = e, "failed to renew lease");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            tokio::time::sleep(renew).await;
        }
    });
    let mut reporter = Reporter::new(report);
    let mut pod_cidr_sent = String::new();
    loop {
        // Upstream aggregates the runtime's and the shutdown manager's errors.
        let runtime_ready = match (
            crate::nodestatus::runtime_state(&k.runtime).await,
            k.shutdown.status(),
        ) {
            (Ok(()), s) => s,
            (Err(e), Ok(())) => Err(e),
            (Err(a), Err(b)) => Err(format!("[{a}, {b}]")),
        };
        let runtime_version = match k.runtime.version().await {
            Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
            Err(_) => String::new(),
        };
        let images = k
            .runtime
            .list_images()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                let mut names = i.repo_digests.clone();
                names.extend(i.repo_tags.clone());
                (names, i.size)
            })
            .collect();
        let inputs = StatusInputs {
            runtime_ready,
            runtime_version,
            images,
            memory_pressure: k.pressure.memory.load(std::sync::atomic::Ordering::Relaxed),
            disk_pressure: k.pressure.disk.load(std::sync::atomic::Ordering::Relaxed),
            pid_pressure: k.pressure.pid.load(std::sync::atomic::Ordering::Relaxed),
            volumes_in_use: k.volumes.csi.in_use(),
        };
        match reporter.update(&k.client, &ns_cfg, &inputs).await {
            Ok(node) => {
                if let Some(a) = node.status.as_ref().and_then(|s| s.allocatable.clone()) {
                    *k.allocatable.lock().unwrap() = a.into_iter().map(|(k, v)| (k, v.0)).collect();
                }
                // The node's podCIDR (or the configured one) goes to the runtime's CNI config.
                let cidr = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.clone())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| k.cfg.pod_cidr.clone());
                if !cidr.is_empty()
                    && cidr != pod_cidr_sent
                    && k.runtime.update_pod_cidr(&cidr).await.is_ok()
                {
                    pod_cidr_sent = cidr;
                }
            }
            Err(e) => tracing::warn!(error = e, "Error updating node status, will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(update) => {}
            _ = k.node_status_now.notified() => {}
        }
    }
}

/// Housekeeping (upstream `HandlePodCleanups`, every 2 s): pods the runtime still has
/// but no source wants any more are stopped and removed; image GC every 5 minutes.
async fn housekeeping(k: Arc<Kubelet>) {
    k.pods.synced().await;
    let gc = crate::images::ImageGc::default();
    let mut gc_at = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if k.health.sync_loop_stalled() {
            tracing::warn!("test hook: the sync loop hangs");
            std::future::pending::<()>().await;
        }
        k.health.sync_loop_ran();
        // Image GC every 5 minutes (upstream ImageGCPeriod).
        if gc_at.elapsed() >= Duration::from_secs(300) {
            gc_at = std::time::Instant::now();
            let cfg = &k.cfg;
            if let Err(e) = gc
                .run_once(
                    &k.runtime,
                    cfg.image_gc_high_threshold_percent,
                    cfg.image_gc_low_threshold_percent,
                    Kubelet::duration_of(&cfg.image_minimum_gc_age),
                    "registry.k8s.io/pause:3.10",
                )
                .await
            {
                tracing::warn!(error = e, "Image garbage collection failed");
            }
        }
        let desired: std::collections::HashSet<String> = k.desired_uids().into_iter().collect();
        let Ok(sandboxes) = k.runtime.list_sandboxes().await else {
            continue;
        };
        // Pod cgroups nothing here runs in any more (a kubelet or runtime that died).
        let mut known = desired.clone();
        known.extend(k.workers.lock().unwrap().keys().cloned());
        known.extend(
            sandboxes
                .iter()
                .filter_map(|s| s.labels.get(crate::cri::POD_UID).cloned()),
        );
        k.cm.cleanup_orphans(&known);
        // Pod directories nothing here knows any more (pods deleted while the kubelet
        // was down): their volumes are unpublished, then the directories go (upstream's
        // cleanupOrphanedPodDirs).
        for uid in k.volumes.pod_uids_on_disk() {
            if !known.contains(&uid)
                && let Err(e) = k.volumes.teardown(&uid).await
            {
                tracing::warn!(
                    pod_uid = uid,
                    error = e,
                    "orphaned pod found, but volumes are not cleaned up"
                );
            }
        }
        for s in sandboxes {
            if let Some(uid) = s.labels.get(crate::cri::POD_UID)
                && !desired.contains(uid)
                && !k.workers.lock().unwrap().contains_key(uid)
            {
                k.dispatch(uid);
            }
        }
    }
}
