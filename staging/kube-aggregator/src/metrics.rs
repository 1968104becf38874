//! The aggregator's metrics (upstream `kube-aggregator/pkg/controllers/status/metrics`):
//! `aggregator_unavailable_apiservice`, 1 for every APIService whose `Available`
//! condition is not True, 0 otherwise (what the usual "aggregated API down" alerts read).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabels {
    pub name: String,
}

#[derive(Clone, Default)]
pub struct AvailabilityMetrics {
    pub unavailable: Family<NameLabels, Gauge>,
}

impl AvailabilityMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aggregator_unavailable_apiservice",
            "Gauge of APIServices which are marked as unavailable broken down by APIService name.",
            self.unavailable.clone(),
        );
    }

    /// The gauges of the APIServices that exist now (removed ones are forgotten).
    pub fn set(&self, availability: &[(String, bool)]) {
        self.unavailable.clear();
        for (name, available) in availability {
            self.unavailable
                .get_or_create(&NameLabels { name: name.clone() })
                .set(i64::from(!available));
        }
    }
}
