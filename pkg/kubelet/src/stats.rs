//! Resource usage of the node, pods and containers (upstream `pkg/kubelet/stats`, read
//! from the cgroup files as cAdvisor does): CPU time and memory working set (usage minus
//! inactive file pages), for cgroup v1 (cpuacct/memory controllers) and v2 (unified).
//! They feed the Summary API and `/metrics/resource`, which metrics-server scrapes.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Cumulative CPU time in nanoseconds.
    pub cpu_ns: u64,
    pub memory_usage: u64,
    pub working_set: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// Usage of the cgroup at `rel` (e.g. `/kubepods/besteffort/pod<uid>/<container id>`).
pub fn cgroup_usage(rel: &str) -> Option<Usage> {
    let rel = rel.trim_start_matches('/');
    if unified() {
        let d = PathBuf::from(ROOT).join(rel);
        let usage = read_u64(&d.join("memory.current"))?;
        let inactive = stat_field(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
        let cpu_us = stat_field(&d.join("cpu.stat"), "usage_usec").unwrap_or(0);
        return Some(Usage {
            cpu_ns: cpu_us * 1000,
            memory_usage: usage,
            working_set: usage.saturating_sub(inactive),
        });
    }
    let mem = PathBuf::from(ROOT).join("memory").join(rel);
    let usage = read_u64(&mem.join("memory.usage_in_bytes"))?;
    let inactive = stat_field(&mem.join("memory.stat"), "total_inactive_file").unwrap_or(0);
    let cpu_ns = read_u64(
        &PathBuf::from(ROOT)
            .join("cpuacct")
            .join(rel)
            .join("cpuacct.usage"),
    )
    .unwrap_or(0);
    Some(Usage {
        cpu_ns,
        memory_usage: usage,
        working_set: usage.saturating_sub(inactive),
    })
}

/// The node's CPU time (from /proc/stat, all CPUs) and memory working set.
pub fn node_usage(memory_capacity: i64) -> Usage {
    let ticks_per_sec = 100u64; // USER_HZ on Linux
    let cpu_ns = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let l = t.lines().next()?.to_string();
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system (idle, iowait excluded) irq softirq steal
            let busy = f.first()?
                + f.get(1)?
                + f.get(2)?
                + f.get(5).unwrap_or(&0)
                + f.get(6).unwrap_or(&0)
                + f.get(7).unwrap_or(&0);
            Some(busy * 1_000_000_000 / ticks_per_sec)
        })
        .unwrap_or(0);
    let available = crate::nodestatus::memory_available().max(0) as u64;
    let used = (memory_capacity.max(0) as u64).saturating_sub(available);
    Usage {
        cpu_ns,
        memory_usage: used,
        working_set: used,
    }
}
