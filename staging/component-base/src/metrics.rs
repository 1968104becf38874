//! Prometheus exposition shared by every component (upstream `component-base/metrics`),
//! including the `process_*` metrics read from /proc at scrape time.

use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Process metrics, refreshed on every scrape.
#[derive(Default, Clone)]
pub struct ProcessMetrics {
    resident: Gauge<f64, AtomicU64>,
    virtual_: Gauge<f64, AtomicU64>,
    cpu: Gauge<f64, AtomicU64>,
    start: Gauge<f64, AtomicU64>,
    fds: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            self.resident.clone(),
        );
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            self.virtual_.clone(),
        );
        // Registered as a gauge so the exposed name keeps upstream's `_total` suffix as is.
        r.register(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            self.cpu.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start.clone(),
        );
        r.register(
            "process_open_fds",
            "Number of open file descriptors.",
            self.fds.clone(),
        );
    }

    /// Reads /proc/self; missing files (non-Linux) leave the values at zero.
    pub fn refresh(&self) {
        let ticks = 100.0; // USER_HZ on Linux
        let page = 4096.0;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; see proc(5).
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            self.cpu.set((num(11) + num(12)) / ticks);
            self.virtual_.set(num(20));
            self.resident.set(num(21) * page);
            let boot = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("btime"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                })
                .unwrap_or(0.0);
            self.start.set(boot + num(19) / ticks);
        }
        if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
            self.fds.set(d.count() as f64);
        }
    }
}

/// Text exposition of a registry, with the content type Prometheus negotiates.
pub fn render(r: &Registry) -> (String, &'static str) {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, r);
    (
        out,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
}
