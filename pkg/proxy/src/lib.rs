//! kube-proxy (upstream `pkg/proxy`): Services and EndpointSlices from the apiserver,
//! programmed as iptables or nftables rules whenever they change (no more often than
//! `minSyncPeriod`, and at least every `syncPeriod`).

pub mod config;
pub mod conntrack;
pub mod healthz;
pub mod iptables;
pub mod metrics;
pub mod nftables;
pub mod servicechange;
pub mod syncstate;

use client_go::informer::Informer;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use metrics::METRICS;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `program` with `input` on its standard input (how both proxiers hand their rules
/// to the kernel: `iptables-restore`, `nft -f -`).
pub fn feed(program: &str, args: &[&str], input: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// What both proxiers render their rules from.
pub struct Options {
    pub node_name: String,
    /// `--cluster-cidr`: traffic to cluster IPs from outside it is masqueraded.
    pub cluster_cidrs: Vec<String>,
    pub masquerade_all: bool,
    pub masquerade_bit: i32,
}

pub struct Proxier {
    pub mode: String,
    pub options: Options,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub health: Arc<healthz::Health>,
    /// iptables mode: the per-service chains in the kernel.
    pub applied: syncstate::SyncState<iptables::AppliedChains>,
    /// nftables mode: the chains and sets of the `kube-proxy` table.
    pub nft_applied: syncstate::SyncState<nftables::Applied>,
}

impl Proxier {
    /// Renders and applies the rules for `map`.
    fn sync(&self, map: &servicechange::ServiceMap) -> Result<usize, String> {
        if self.mode == "nftables" {
            return self.nft_applied.sync(
                self.sync_period,
                // The periodic resync rewrites every chain (still keeping affinity sets).
                nftables::Applied::rewrite_all,
                |previous, _| {
                    let text = nftables::render(map, &self.options);
                    let (script, now) = nftables::incremental(&text, previous);
                    nftables::apply(&script)?;
                    Ok((now, text.lines().count()))
                },
            );
        }
        iptables::ensure_jumps()?;
        let existing = iptables::existing_service_chains();
        self.applied.sync(
            self.sync_period,
            // Nothing counts as written: the periodic resync is a full one, as upstream's.
            |_| iptables::AppliedChains::new(),
            |previous, partial| {
                let text = iptables::render(map, &self.options, &existing);
                let (input, chains) = iptables::minimize(&text, previous);
                if let Err(e) = iptables::apply(&input) {
                    if partial {
                        METRICS.partial_restore_failures.inc();
                    }
                    return Err(e);
                }
                Ok((chains, text.lines().filter(|l| l.starts_with("-A")).count()))
            },
        )
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>, client: kube::Client) {
        let services = Informer::new(Api::<Service>::all(client.clone()));
        let slices = Informer::new(Api::<EndpointSlice>::all(client));
        let wake = Arc::new(tokio::sync::Notify::new());
        let w = wake.clone();
        services.add_handler(move |_, _| {
            METRICS.service_changes.inc();
            w.notify_one();
        });
        let w = wake.clone();
        // Network programming latency runs from the slice's trigger time to the sync.
        let triggers: Arc<std::sync::Mutex<Vec<jiff::Timestamp>>> = Arc::default();
        let t = triggers.clone();
        slices.add_handler(move |s, _| {
            METRICS.endpoint_changes.inc();
            if let Some(ts) = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("endpoints.kubernetes.io/last-change-trigger-time"))
                .and_then(|v| v.parse::<jiff::Timestamp>().ok())
            {
                t.lock().unwrap().push(ts);
            }
            w.notify_one();
        });
        services.run();
        slices.run();
        services.synced().await;
        slices.synced().await;
        let mut last = Instant::now() - self.min_sync_period;
        let mut previous = servicechange::ServiceMap::new();
        loop {
            let wait = self.min_sync_period.saturating_sub(last.elapsed());
            tokio::time::sleep(wait).await;
            last = Instant::now();
            let map = servicechange::build(&services.store.state(), &slices.store.state());
            match self.sync(&map) {
                Ok(rules) => {
                    let took = last.elapsed();
                    METRICS.sync_duration.observe(took.as_secs_f64());
                    METRICS.last_sync.set(jiff::Timestamp::now().as_second());
                    METRICS.rules_total.set(rules as i64);
                    let now = jiff::Timestamp::now();
                    for ts in triggers.lock().unwrap().drain(..) {
                        let d = now.duration_since(ts).as_secs_f64();
                        if d >= 0.0 {
                            METRICS.network_programming.observe(d);
                        }
                    }
                    self.health.synced();
                    conntrack::clear(&conntrack::stale_udp(&previous, &map));
                    previous = map.clone();
                    tracing::debug!(services = map.len(), rules, took = ?took, "SyncProxyRules complete");
                }
                Err(e) => {
                    METRICS.sync_failures.inc();
                    tracing::error!(error = e, "Failed to sync proxy rules; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.sync_period) => {}
            }
        }
    }
}
