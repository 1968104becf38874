//! kube-proxy's metrics under upstream's names (`pkg/proxy/metrics`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

pub struct Metrics {
    pub sync_duration: Histogram,
    pub sync_full_duration: Histogram,
    pub sync_partial_duration: Histogram,
    pub partial_restore_failures: Counter,
    pub network_programming: Histogram,
    pub last_sync: Gauge,
    pub sync_failures: Counter,
    pub service_changes: Counter,
    pub endpoint_changes: Counter,
    pub rules_total: Gauge,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
    sync_full_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
    sync_partial_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
    partial_restore_failures: Counter::default(),
    network_programming: Histogram::new(exponential_buckets(0.25, 2.0, 12)),
    last_sync: Gauge::default(),
    sync_failures: Counter::default(),
    service_changes: Counter::default(),
    endpoint_changes: Counter::default(),
    rules_total: Gauge::default(),
});

impl Metrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            self.sync_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs",
            self.sync_full_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs",
            self.sync_partial_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures",
            "Cumulative proxy iptables partial restore failures",
            self.partial_restore_failures.clone(),
        );
        r.register(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            self.network_programming.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_sync.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_iptables_restore_failures",
            "Cumulative proxy iptables restore failures",
            self.sync_failures.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_service_changes",
            "Cumulative proxy rules Service changes",
            self.service_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_endpoint_changes",
            "Cumulative proxy rules Endpoint changes",
            self.endpoint_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_iptables_total",
            "Total number of iptables rules owned by kube-proxy",
            self.rules_total.clone(),
        );
        r
    }
}
