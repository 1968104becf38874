//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): every 10 s the hard
//! thresholds (`evictionHard`: memory.available, nodefs.available, ...) are compared
//! with what the node has; a crossed memory or nodefs threshold reports
//! MemoryPressure / DiskPressure (held for `evictionPressureTransitionPeriod` after the
//! last breach) and, while a threshold is crossed, evicts one pod per round — BestEffort first, then
//! Burstable, then Guaranteed, lower priority first — which ends `Failed` with reason
//! `Evicted` and a DisruptionTarget condition. Static and critical pods are spared.

use crate::kubelet::{Kubelet, is_static};
use crate::kuberuntime::sandbox::qos_class;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);
/// Pods at or above this priority (system-cluster-critical) are never evicted.
const CRITICAL_PRIORITY: i32 = 2_000_000_000;

#[derive(Default)]
pub struct Pressure {
    pub memory: AtomicBool,
    pub disk: AtomicBool,
}

/// A threshold in bytes for a signal of `capacity` (`100Mi` or `10%`).
pub fn threshold_bytes(v: &str, capacity: i64) -> i64 {
    match v.strip_suffix('%') {
        Some(p) => (p.parse::<f64>().unwrap_or(0.0) * capacity as f64 / 100.0) as i64,
        None => crate::nodestatus::quantity_bytes(v),
    }
}

/// `memory.available<100Mi,nodefs.available<10%` (the flag's form).
pub fn parse_flag(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('<').ok_or_else(|| {
            format!("invalid eviction threshold {part:?}: must be <signal><<quantity>")
        })?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

impl Kubelet {
    /// Which resource is under pressure now (memory, then nodefs).
    fn observe_pressure(&self) -> (bool, bool) {
        let hard = &self.cfg.eviction_hard;
        let mem = hard.get("memory.available").is_some_and(|t| {
            crate::nodestatus::memory_available() < threshold_bytes(t, self.memory_capacity)
        });
        let (total, avail) = crate::nodestatus::fs_usage(&self.root);
        let disk = hard
            .get("nodefs.available")
            .is_some_and(|t| total > 0 && (avail as i64) < threshold_bytes(t, total as i64));
        (mem, disk)
    }

    /// The pod to evict first, if any may be.
    fn eviction_candidate(&self) -> Option<k8s_openapi::api::core::v1::Pod> {
        let rank = |q: &str| match q {
            "BestEffort" => 0,
            "Burstable" => 1,
            _ => 2,
        };
        let mut pods: Vec<_> = self
            .desired_uids()
            .into_iter()
            .filter_map(|u| self.pod(&u))
            .filter(|p| !is_static(p) && p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0) < CRITICAL_PRIORITY)
            .filter(|p| {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                self.state
                    .lock()
                    .unwrap()
                    .get(&uid)
                    .is_none_or(|s| s.evicted.is_none())
            })
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect();
        pods.sort_by_key(|p| {
            (
                rank(qos_class(p)),
                p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            )
        });
        pods.into_iter().next()
    }
}

/// Whether a condition still reports pressure: a breach seen within the transition
/// period (`evictionPressureTransitionPeriod`) keeps it, so it does not flap.
pub fn still_under_pressure(last_breach: Option<std::time::Instant>, period: Duration) -> bool {
    last_breach.is_some_and(|t| t.elapsed() < period)
}

pub async fn run(k: Arc<Kubelet>, pressure: Arc<Pressure>) {
    let period = crate::apis::config::KubeletConfiguration::duration(
        &k.cfg.eviction_pressure_transition_period,
    );
    let (mut mem_seen, mut disk_seen) = (None, None);
    loop {
        tokio::time::sleep(MONITORING_INTERVAL).await;
        let (mem, disk) = k.observe_pressure();
        let now = std::time::Instant::now();
        if mem {
            mem_seen = Some(now);
        }
        if disk {
            disk_seen = Some(now);
        }
        pressure
            .memory
            .store(still_under_pressure(mem_seen, period), Ordering::Relaxed);
        pressure
            .disk
            .store(still_under_pressure(disk_seen, period), Ordering::Relaxed);
        let resource = if mem {
            "memory"
        } else if disk {
            "ephemeral-storage"
        } else {
            continue;
        };
        let Some(pod) = k.eviction_candidate() else {
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let message = format!("The node was low on resource: {resource}. ");
        tracing::info!(pod = ?pod.metadata.name, resource, "Evicting pod");
        k.event(&pod, None, "Warning", "Evicted", message.clone());
        k.state
            .lock()
            .unwrap()
            .entry(uid.clone())
            .or_default()
            .evicted = Some(message);
        k.dispatch(&uid);
    }
}
