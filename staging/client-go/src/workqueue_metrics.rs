//! The work queues' metrics under upstream's names (`component-base/metrics/prometheus/
//! workqueue`), labelled by queue name; unnamed queues report nothing, as upstream's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex, Weak};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub name: String,
}

fn duration_histogram() -> Histogram {
    // Upstream's buckets: decades from 10 ns to 10 s.
    Histogram::new(exponential_buckets(1e-8, 10.0, 10))
}

pub struct Metrics {
    pub depth: Family<QueueLabel, Gauge>,
    pub adds: Family<QueueLabel, Counter>,
    pub retries: Family<QueueLabel, Counter>,
    pub queue_duration: Family<QueueLabel, Histogram, fn() -> Histogram>,
    pub work_duration: Family<QueueLabel, Histogram, fn() -> Histogram>,
    pub unfinished: Family<QueueLabel, Gauge<f64, AtomicU64>>,
    pub longest: Family<QueueLabel, Gauge<f64, AtomicU64>>,
    /// The named queues, for the in-progress gauges computed at scrape time.
    pub(crate) queues: Mutex<Vec<Weak<crate::workqueue::Queue>>>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    depth: Family::default(),
    adds: Family::default(),
    retries: Family::default(),
    queue_duration: Family::new_with_constructor(duration_histogram),
    work_duration: Family::new_with_constructor(duration_histogram),
    unfinished: Family::default(),
    longest: Family::default(),
    queues: Mutex::new(Vec::new()),
});

/// Adds the workqueue families to a component's registry.
pub fn register(r: &mut Registry) {
    let m = &*METRICS;
    r.register(
        "workqueue_depth",
        "Current depth of workqueue",
        m.depth.clone(),
    );
    r.register(
        "workqueue_adds",
        "Total number of adds handled by workqueue",
        m.adds.clone(),
    );
    r.register(
        "workqueue_retries",
        "Total number of retries handled by workqueue",
        m.retries.clone(),
    );
    r.register(
        "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested.",
        m.queue_duration.clone(),
    );
    r.register(
        "workqueue_work_duration_seconds",
        "How long in seconds processing an item from workqueue takes.",
        m.work_duration.clone(),
    );
    r.register(
        "workqueue_unfinished_work_seconds",
        "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
        m.unfinished.clone(),
    );
    r.register(
        "workqueue_longest_running_processor_seconds",
        "How many seconds has the longest running processor for workqueue been running.",
        m.longest.clone(),
    );
}

/// Brings the in-progress gauges up to date (call before rendering the registry).
pub fn refresh() {
    let m = &*METRICS;
    let mut queues = m.queues.lock().unwrap();
    queues.retain(|q| q.strong_count() > 0);
    for q in queues.iter().filter_map(Weak::upgrade) {
        if let Some(name) = q.name() {
            let (unfinished, longest) = q.in_progress();
            let label = QueueLabel {
                name: name.to_string(),
            };
            m.unfinished.get_or_create(&label).set(unfinished);
            m.longest.get_or_create(&label).set(longest);
        }
    }
}
