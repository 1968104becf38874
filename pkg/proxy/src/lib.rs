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

use client_go::informer::Informer;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use metrics::METRICS;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Proxier {
    pub mode: String,
    pub node_name: String,
    pub cluster_cidrs: Vec<String>,
    pub masquerade_all: bool,
    pub masquerade_bit: i32,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub health: Arc<healthz::Health>,
    /// iptables mode: the per-service chains in the kernel after the last successful sync,
    /// and when the last full sync was; None forces a full sync.
    pub applied: std::sync::Mutex<Option<(iptables::AppliedChains, Instant)>>,
    /// nftables mode: the same for the `kube-proxy` table.
    pub nft_applied: std::sync::Mutex<Option<(nftables::Applied, Instant)>>,
}

/// The full/partial sync duration histograms.
fn observe_sync(partial: bool, started: Instant) {
    let took = started.elapsed().as_secs_f64();
    if partial {
        METRICS.sync_partial_duration.observe(took);
    } else {
        METRICS.sync_full_duration.observe(took);
    }
}

impl Proxier {
    /// Renders and applies the rules for `map`.
    fn sync(&self, map: &servicechange::ServiceMap) -> Result<usize, String> {
        if self.mode == "nftables" {
            let started = Instant::now();
            let text = nftables::render(
                map,
                &nftables::Options {
                    node_name: self.node_name.clone(),
                    cluster_cidrs: self.cluster_cidrs.clone(),
                    masquerade_all: self.masquerade_all,
                    masquerade_bit: self.masquerade_bit,
                },
            );
            let mut applied = self.nft_applied.lock().unwrap();
            // The periodic resync rewrites every chain (still keeping affinity sets).
            let (previous, partial) = match applied.as_ref() {
                Some((a, at)) if at.elapsed() < self.sync_period => (Some(a.clone()), true),
                Some((a, _)) => (Some(a.rewrite_all()), false),
                None => (None, false),
            };
            let (script, now) = nftables::incremental(&text, previous.as_ref());
            let full_at = match applied.as_ref() {
                Some((_, at)) if partial => *at,
                _ => started,
            };
            if let Err(e) = nftables::apply(&script) {
                *applied = None;
                return Err(e);
            }
            *applied = Some((now, full_at));
            observe_sync(partial, started);
            return Ok(text.lines().count());
        }
        iptables::ensure_jumps()?;
        let existing = iptables::existing_service_chains();
        let started = Instant::now();
        let text = iptables::render(
            map,
            &iptables::Options {
                node_name: self.node_name.clone(),
                cluster_cidrs: self.cluster_cidrs.clone(),
                masquerade_all: self.masquerade_all,
                masquerade_bit: self.masquerade_bit,
            },
            &existing,
        );
        let mut applied = self.applied.lock().unwrap();
        // The periodic resync is a full one, as upstream's.
        let previous = applied
            .as_ref()
            .filter(|(_, full_at)| full_at.elapsed() < self.sync_period);
        let partial = previous.is_some();
        let (input, chains) = iptables::minimize(&text, previous.map(|(c, _)| c));
        let full_at = previous.map_or(started, |(_, at)| *at);
        if let Err(e) = iptables::apply(&input) {
            *applied = None;
            if partial {
                METRICS.partial_restore_failures.inc();
            }
            return Err(e);
        }
        *applied = Some((chains, full_at));
        observe_sync(partial, started);
        Ok(text.lines().filter(|l| l.starts_with("-A")).count())
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
