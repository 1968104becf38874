//! The kubelet's metrics under upstream's names (`pkg/kubelet/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub container_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VolumeLabels {
    pub namespace: String,
    pub persistentvolumeclaim: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe_type: String,
    pub result: String,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

pub struct Metrics {
    pub node_name: Family<NodeLabels, Gauge>,
    pub running_pods: Gauge,
    pub running_containers: Family<StateLabels, Gauge>,
    pub pod_start_duration: Histogram,
    pub pod_worker_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    pub pleg_relist_duration: Histogram,
    pub pleg_last_seen: Gauge,
    pub runtime_operations: Family<OperationLabels, Counter>,
    pub runtime_operations_errors: Family<OperationLabels, Counter>,
    pub started_containers: Counter,
    pub started_pods: Counter,
    pub prober_probe_total: Family<ProbeLabels, Counter>,
    pub certificate_client_ttl_seconds: Gauge,
    pub certificate_client_renew_errors: Counter,
    /// Claims' volume usage, refilled every `volumeStatsAggPeriod`.
    pub volume_capacity_bytes: Family<VolumeLabels, Gauge>,
    pub volume_available_bytes: Family<VolumeLabels, Gauge>,
    pub volume_used_bytes: Family<VolumeLabels, Gauge>,
    pub volume_inodes: Family<VolumeLabels, Gauge>,
    pub volume_inodes_free: Family<VolumeLabels, Gauge>,
    pub volume_inodes_used: Family<VolumeLabels, Gauge>,
    pub volume_health_abnormal: Family<VolumeLabels, Gauge>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    node_name: Family::default(),
    running_pods: Gauge::default(),
    running_containers: Family::default(),
    pod_start_duration: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
    pod_worker_duration: Family::new_with_constructor(seconds),
    pleg_relist_duration: seconds(),
    pleg_last_seen: Gauge::default(),
    runtime_operations: Family::default(),
    runtime_operations_errors: Family::default(),
    started_containers: Counter::default(),
    started_pods: Counter::default(),
    prober_probe_total: Family::default(),
    certificate_client_ttl_seconds: Gauge::default(),
    certificate_client_renew_errors: Counter::default(),
    volume_capacity_bytes: Family::default(),
    volume_available_bytes: Family::default(),
    volume_used_bytes: Family::default(),
    volume_inodes: Family::default(),
    volume_inodes_free: Family::default(),
    volume_inodes_used: Family::default(),
    volume_health_abnormal: Family::default(),
});

impl Metrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            self.node_name.clone(),
        );
        r.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            self.running_pods.clone(),
        );
        r.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            self.running_containers.clone(),
        );
        r.register("kubelet_pod_start_duration_seconds", "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run", self.pod_start_duration.clone());
        r.register("kubelet_pod_worker_duration_seconds", "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync", self.pod_worker_duration.clone());
        r.register(
            "kubelet_pleg_relist_duration_seconds",
            "Duration in seconds for relisting pods in PLEG.",
            self.pleg_relist_duration.clone(),
        );
        r.register(
            "kubelet_pleg_last_seen_seconds",
            "Timestamp in seconds when PLEG was last seen active.",
            self.pleg_last_seen.clone(),
        );
        r.register(
            "kubelet_runtime_operations",
            "Cumulative number of runtime operations by operation type.",
            self.runtime_operations.clone(),
        );
        r.register(
            "kubelet_runtime_operations_errors",
            "Cumulative number of runtime operation errors by operation type.",
            self.runtime_operations_errors.clone(),
        );
        r.register(
            "kubelet_started_containers",
            "Cumulative number of containers started",
            self.started_containers.clone(),
        );
        r.register(
            "kubelet_started_pods",
            "Cumulative number of pods started",
            self.started_pods.clone(),
        );
        r.register(
            "kubelet_certificate_manager_client_ttl_seconds",
            "Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF.",
            self.certificate_client_ttl_seconds.clone(),
        );
        r.register(
            "kubelet_certificate_manager_client_expiration_renew_errors",
            "Counter of certificate renewal errors.",
            self.certificate_client_renew_errors.clone(),
        );
        for (name, help, family) in [
            (
                "kubelet_volume_stats_capacity_bytes",
                "Capacity in bytes of the volume",
                &self.volume_capacity_bytes,
            ),
            (
                "kubelet_volume_stats_available_bytes",
                "Number of available bytes in the volume",
                &self.volume_available_bytes,
            ),
            (
                "kubelet_volume_stats_used_bytes",
                "Number of used bytes in the volume",
                &self.volume_used_bytes,
            ),
            (
                "kubelet_volume_stats_inodes",
                "Maximum number of inodes in the volume",
                &self.volume_inodes,
            ),
            (
                "kubelet_volume_stats_inodes_free",
                "Number of free inodes in the volume",
                &self.volume_inodes_free,
            ),
            (
                "kubelet_volume_stats_inodes_used",
                "Number of used inodes in the volume",
                &self.volume_inodes_used,
            ),
            (
                "kubelet_volume_stats_health_status_abnormal",
                "Abnormal volume health status. The count is either 1 or 0. 1 indicates the volume is unhealthy, 0 indicates volume is healthy",
                &self.volume_health_abnormal,
            ),
        ] {
            r.register(name, help, family.clone());
        }
        r.register("prober_probe", "Cumulative number of a liveness, readiness or startup probe for a container by result.", self.prober_probe_total.clone());
        r
    }
}
