//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): every 10 s the hard
//! thresholds (`evictionHard`: memory.available, nodefs.available, nodefs.inodesFree,
//! imagefs.available, imagefs.inodesFree, pid.available) are compared with what the
//! node has; a crossed threshold reports MemoryPressure, DiskPressure or PIDPressure
//! (held for `evictionPressureTransitionPeriod` after the last breach) and, while a
//! threshold is crossed, evicts one pod per round — BestEffort first, then
//! Burstable, then Guaranteed, lower priority first — which ends `Failed` with reason
//! `Evicted` and a DisruptionTarget condition. Static and critical pods are spared.

pub mod local_storage;

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
    pub pid: AtomicBool,
}

/// The signals this kubelet observes, with the node condition and the resource an
/// eviction names (upstream `signalToNodeCondition`, `signalToResource`).
const SIGNALS: [(&str, Condition, &str); 6] = [
    ("memory.available", Condition::Memory, "memory"),
    ("nodefs.available", Condition::Disk, "ephemeral-storage"),
    ("nodefs.inodesFree", Condition::Disk, "inodes"),
    ("imagefs.available", Condition::Disk, "ephemeral-storage"),
    ("imagefs.inodesFree", Condition::Disk, "inodes"),
    ("pid.available", Condition::Pid, "pids"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Memory,
    Disk,
    Pid,
}

/// What the node has of each signal: (available, capacity).
#[derive(Clone, Debug, Default)]
pub struct Observations {
    pub values: BTreeMap<&'static str, (i64, i64)>,
}

/// The thresholds `obs` crosses, in [`SIGNALS`] order, with their condition and
/// resource. A signal not observed (no image filesystem reported, say) crosses nothing.
pub fn crossed(
    obs: &Observations,
    thresholds: &BTreeMap<String, String>,
) -> Vec<(&'static str, Condition, &'static str)> {
    SIGNALS
        .iter()
        .filter(|(signal, _, _)| {
            let (Some(t), Some((avail, cap))) = (thresholds.get(*signal), obs.values.get(signal))
            else {
                return false;
            };
            *cap > 0 && *avail < threshold_bytes(t, *cap)
        })
        .copied()
        .collect()
}

/// Checks `evictionHard` as upstream's `ParseThresholdConfig`: known signals, and
/// quantities or percentages in 0-100 %.
pub fn validate(thresholds: &BTreeMap<String, String>) -> Vec<String> {
    let mut errs = Vec::new();
    for (signal, v) in thresholds {
        if !SIGNALS.iter().any(|(s, _, _)| s == signal) {
            errs.push(match signal.as_str() {
                "allocatableMemory.available" | "containerfs.available" | "containerfs.inodesFree" => format!("invalid configuration: evictionHard signal {signal:?} is not supported by this kubelet"),
                _ => format!("invalid configuration: evictionHard: unsupported eviction signal {signal}"),
            });
            continue;
        }
        let ok = match v.strip_suffix('%') {
            Some(p) => p.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p)),
            None => apimachinery::resource::Quantity::parse(v).is_some_and(|q| q.value() >= 0),
        };
        if !ok {
            errs.push(format!("invalid configuration: evictionHard[{signal}] {v:?}: must be a non-negative quantity or a percentage between 0% and 100%"));
        }
    }
    errs
}

/// Processes the node may still start: `pid_max` (or `threads-max`, if lower) less
/// the tasks running (upstream's `pidlimit` stats, from /proc/loadavg).
pub fn pid_observation() -> Option<(i64, i64)> {
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<i64>().ok();
    let max = match (
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let running: i64 = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()?;
    Some(((max - running).max(0), max))
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
    /// What the node has now of every signal.
    async fn observe(&self) -> Observations {
        let mut values = BTreeMap::new();
        values.insert(
            "memory.available",
            (crate::nodestatus::memory_available(), self.memory_capacity),
        );
        let fs = |path: &std::path::Path| {
            let (total, avail) = crate::nodestatus::fs_usage(path);
            let (inodes, free) = crate::nodestatus::fs_inodes(path);
            ((avail as i64, total as i64), (free as i64, inodes as i64))
        };
        let (bytes, inodes) = fs(&self.root);
        values.insert("nodefs.available", bytes);
        values.insert("nodefs.inodesFree", inodes);
        // The runtime's image filesystem, as it reports it.
        if let Ok(info) = self.runtime.image_fs_info().await
            && let Some(mount) = info
                .image_filesystems
                .first()
                .and_then(|f| f.fs_id.as_ref())
                .map(|id| id.mountpoint.clone())
                .filter(|m| !m.is_empty())
        {
            let (bytes, inodes) = fs(std::path::Path::new(&mount));
            values.insert("imagefs.available", bytes);
            values.insert("imagefs.inodesFree", inodes);
        }
        if let Some(pids) = pid_observation() {
            values.insert("pid.available", pids);
        }
        Observations { values }
    }

    /// What the pod uses of the node's disk: its disk-backed emptyDirs, and each running
    /// container's writable layer and log.
    async fn storage_usage(
        &self,
        pod: &k8s_openapi::api::core::v1::Pod,
    ) -> local_storage::PodStorageUsage {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut usage = local_storage::PodStorageUsage::default();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if v.empty_dir
                .as_ref()
                .is_some_and(|e| e.medium.as_deref() != Some("Memory"))
            {
                let path = self.volumes.empty_dir_path(&uid, &v.name);
                usage
                    .empty_dirs
                    .insert(v.name.clone(), local_storage::disk_usage(&path));
            }
        }
        let rt = self.pod_runtime(&uid).await.unwrap_or_default();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let Some(i) = rt.current(&c.name) else {
                continue;
            };
            let layer = self
                .runtime
                .writable_layer_bytes(&i.status.id)
                .await
                .ok()
                .flatten()
                .unwrap_or(0);
            let logs = std::fs::metadata(&i.status.log_path).map_or(0, |m| m.len());
            usage.containers.insert(c.name.clone(), layer + logs);
        }
        usage
    }

    /// Evicts the pods past their local storage limits; whether any was.
    async fn local_storage_eviction(self: &Arc<Self>) -> bool {
        let mut evicted = false;
        for pod in self.active_pods() {
            if is_static(&pod)
                || pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0) >= CRITICAL_PRIORITY
            {
                continue;
            }
            let usage = self.storage_usage(&pod).await;
            if let Some(message) = local_storage::violation(&pod, &usage) {
                self.evict(&pod, message, "ephemeral-storage");
                evicted = true;
            }
        }
        evicted
    }

    /// Ends `pod` as Evicted with `message`, at once (no grace, as upstream's hard
    /// evictions).
    fn evict(
        self: &Arc<Self>,
        pod: &k8s_openapi::api::core::v1::Pod,
        message: String,
        resource: &str,
    ) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        tracing::info!(pod = ?pod.metadata.name, resource, "Evicting pod");
        self.event(pod, None, "Warning", "Evicted", message.clone());
        self.end_pod(
            &uid,
            crate::kubelet::KubeletKill {
                reason: "Evicted",
                message,
                grace: 0,
            },
        );
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
                    .is_none_or(|s| s.killed_by_kubelet.is_none())
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

fn condition_key(c: Condition) -> &'static str {
    match c {
        Condition::Memory => "MemoryPressure",
        Condition::Disk => "DiskPressure",
        Condition::Pid => "PIDPressure",
    }
}

pub async fn run(k: Arc<Kubelet>, pressure: Arc<Pressure>) {
    let period = crate::apis::config::KubeletConfiguration::duration(
        &k.cfg.eviction_pressure_transition_period,
    );
    let mut seen: BTreeMap<&'static str, std::time::Instant> = BTreeMap::new();
    loop {
        tokio::time::sleep(MONITORING_INTERVAL).await;
        let crossed = crossed(&k.observe().await, &k.cfg.eviction_hard);
        let now = std::time::Instant::now();
        for (_, condition, _) in &crossed {
            seen.insert(condition_key(*condition), now);
        }
        for (condition, flag) in [
            (Condition::Memory, &pressure.memory),
            (Condition::Disk, &pressure.disk),
            (Condition::Pid, &pressure.pid),
        ] {
            let last = seen.get(condition_key(condition)).copied();
            flag.store(still_under_pressure(last, period), Ordering::Relaxed);
        }
        // Pods past their own storage limits go first; no threshold eviction then.
        if k.cfg.local_storage_capacity_isolation && k.local_storage_eviction().await {
            continue;
        }
        let Some((signal, _, resource)) = crossed.first().copied() else {
            continue;
        };
        tracing::warn!(signal, "Eviction threshold crossed");
        let Some(pod) = k.eviction_candidate() else {
            continue;
        };
        k.evict(
            &pod,
            format!("The node was low on resource: {resource}. "),
            resource,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signals_cross_their_thresholds() {
        let obs = Observations {
            values: BTreeMap::from([
                ("memory.available", (50 << 20, 4 << 30)),
                ("nodefs.available", (50, 1000)),
                ("nodefs.inodesFree", (900, 1000)),
                ("pid.available", (500, 32768)),
            ]),
        };
        type Case<'a> = (&'a [(&'a str, &'a str)], Vec<&'a str>);
        let cases: [Case; 5] = [
            (&[("memory.available", "100Mi")], vec!["memory.available"]),
            (&[("memory.available", "10Mi")], vec![]),
            (
                &[("nodefs.available", "10%"), ("nodefs.inodesFree", "5%")],
                vec!["nodefs.available"],
            ),
            (
                &[("pid.available", "1000"), ("imagefs.available", "15%")],
                vec!["pid.available"],
            ),
            (&[("pid.available", "1%")], vec![]),
        ];
        for (t, want) in cases {
            let got: Vec<&str> = crossed(&obs, &thresholds(t)).iter().map(|c| c.0).collect();
            assert_eq!(got, want, "{t:?}");
        }
        let c = crossed(&obs, &thresholds(&[("pid.available", "1000")]));
        assert_eq!((c[0].1, c[0].2), (Condition::Pid, "pids"));
    }

    #[test]
    fn thresholds_are_validated() {
        let defaults = crate::apis::config::KubeletConfiguration::default().eviction_hard;
        assert!(validate(&defaults).is_empty());
        let errs = validate(&thresholds(&[
            ("memory.avail", "1Gi"),
            ("nodefs.available", "120%"),
            ("containerfs.available", "10%"),
        ]));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.contains("unsupported eviction signal memory.avail"))
        );
    }
}
