//! Storage round-trip metrics (upstream `etcd_request_duration_seconds`), for either
//! backend; the apiserver registers them with its own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    pub operation: String,
    #[prometheus(flatten)]
    pub type_: TypeLabel,
}

/// `type` is a Rust keyword; the label set carries it in its own struct.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Upstream's buckets for `etcd_request_duration_seconds`.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Storage round trips (`etcd_request_duration_seconds`), for either backend.
pub static STORAGE_DURATION: std::sync::LazyLock<HistogramFamily<StorageLabels>> =
    std::sync::LazyLock::new(|| Family::new_with_constructor(new_histogram));

/// Times one storage operation on a resource.
pub fn observe_storage(
    operation: &str,
    resource: &apimachinery::GroupResource,
    started: std::time::Instant,
) {
    STORAGE_DURATION
        .get_or_create(&StorageLabels {
            operation: operation.into(),
            type_: TypeLabel {
                r#type: resource.to_string(),
            },
        })
        .observe(started.elapsed().as_secs_f64());
}
