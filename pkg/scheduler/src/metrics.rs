//! The scheduler's metrics under upstream's names (`pkg/scheduler/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
    pub profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptsLabels {
    pub attempts: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IncomingLabels {
    pub queue: String,
    pub event: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn e2e() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 20))
}

pub struct Metrics {
    pub schedule_attempts: Family<ResultLabels, Counter>,
    pub attempt_duration: Histograms<ResultLabels>,
    pub e2e_duration: Histograms<ResultLabels>,
    pub pending_pods: Family<QueueLabels, Gauge>,
    pub incoming_pods: Family<IncomingLabels, Counter>,
    pub preemption_attempts: Counter,
    /// Attempts it took to schedule a pod, and the time from its first attempt.
    pub pod_scheduling_attempts: Histogram,
    pub pod_scheduling_sli_duration: Family<AttemptsLabels, Histogram, fn() -> Histogram>,
    pub preemption_victims: Histogram,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    schedule_attempts: Family::default(),
    attempt_duration: Family::new_with_constructor(latency),
    e2e_duration: Family::new_with_constructor(e2e),
    pending_pods: Family::default(),
    incoming_pods: Family::default(),
    preemption_attempts: Counter::default(),
    pod_scheduling_attempts: Histogram::new(exponential_buckets(1.0, 2.0, 5)),
    pod_scheduling_sli_duration: Family::new_with_constructor(e2e),
    preemption_victims: Histogram::new(exponential_buckets(1.0, 2.0, 7)),
});

impl Metrics {
    pub fn observe_attempt(&self, result: &str, profile: &str, seconds: f64) {
        let l = ResultLabels {
            result: result.into(),
            profile: profile.into(),
        };
        self.schedule_attempts.get_or_create(&l).inc();
        self.attempt_duration.get_or_create(&l).observe(seconds);
    }

    pub fn set_pending(&self, p: &crate::backend::queue::Pending) {
        for (queue, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
            ("gated", p.gated),
        ] {
            self.pending_pods
                .get_or_create(&QueueLabels {
                    queue: queue.into(),
                })
                .set(n as i64);
        }
    }

    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            self.schedule_attempts.clone(),
        );
        r.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            self.attempt_duration.clone(),
        );
        r.register(
            "scheduler_e2e_scheduling_duration_seconds",
            "E2e scheduling latency in seconds (from the first attempt until bound)",
            self.e2e_duration.clone(),
        );
        r.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
            self.pending_pods.clone(),
        );
        r.register(
            "scheduler_queue_incoming_pods",
            "Number of pods added to scheduling queues by event and queue type.",
            self.incoming_pods.clone(),
        );
        r.register(
            "scheduler_pod_scheduling_attempts",
            "Number of attempts to successfully schedule a pod.",
            self.pod_scheduling_attempts.clone(),
        );
        r.register(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
            self.pod_scheduling_sli_duration.clone(),
        );
        r.register(
            "scheduler_preemption_attempts",
            "Total preemption attempts in the cluster till now",
            self.preemption_attempts.clone(),
        );
        r.register(
            "scheduler_preemption_victims",
            "Number of selected preemption victims",
            self.preemption_victims.clone(),
        );
        r
    }
}
