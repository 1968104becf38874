//! The apiserver's request and storage metrics under upstream's names and labels
//! (upstream `endpoints/metrics` and `storage` metrics).

use super::handlers::ApiServer;
use super::request::RequestInfo;
use component_base::metrics::ProcessMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    component: String,
    dry_run: String,
    group: String,
    resource: String,
    scope: String,
    subresource: String,
    verb: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    component: String,
    dry_run: String,
    group: String,
    resource: String,
    scope: String,
    subresource: String,
    verb: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub group: String,
    pub version: String,
    pub resource: String,
}

/// Events sent to watchers, per resource (`apiserver_watch_events_total`).
pub static WATCH_EVENTS: std::sync::LazyLock<Family<WatchLabels, Counter>> =
    std::sync::LazyLock::new(Family::default);

pub use crate::storage::metrics::{STORAGE_DURATION, observe_storage};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    request_kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

/// Upstream's request-duration buckets.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct ApiMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    inflight: Family<KindLabels, Gauge>,
    storage_objects: Family<ResourceLabels, Gauge>,
    process: ProcessMetrics,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<DurationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                new_histogram,
            );
        let inflight = Family::<KindLabels, Gauge>::default();
        let storage_objects = Family::<ResourceLabels, Gauge>::default();
        let process = ProcessMetrics::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            durations.clone(),
        );
        registry.register(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            inflight.clone(),
        );
        registry.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            storage_objects.clone(),
        );
        registry.register(
            "apiserver_watch_events",
            "Number of events sent in watch clients",
            WATCH_EVENTS.clone(),
        );
        registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            STORAGE_DURATION.clone(),
        );
        crate::util::flowcontrol::METRICS.register(&mut registry);
        process.register(&mut registry);
        Self {
            registry,
            requests,
            durations,
            inflight,
            storage_objects,
            process,
        }
    }
}

/// Upstream's verb label: LIST/WATCH/GET for reads, the HTTP method for writes.
fn verb_label(info: &RequestInfo, method: &str) -> String {
    if !info.is_resource_request {
        return method.to_uppercase();
    }
    match info.verb.as_str() {
        "list" => "LIST",
        "watch" => "WATCH",
        "get" => "GET",
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        _ => return method.to_uppercase(),
    }
    .to_string()
}

fn scope(info: &RequestInfo) -> String {
    match (
        info.is_resource_request,
        info.name.is_empty(),
        info.namespace.is_empty(),
    ) {
        (false, _, _) => "",
        (true, false, _) => "resource",
        (true, true, false) => "namespace",
        (true, true, true) => "cluster",
    }
    .to_string()
}

fn is_mutating(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

impl ApiMetrics {
    /// Marks a request in flight; the returned guard ends it.
    pub fn start(&self, method: &str) -> impl Drop + use<> {
        let kind = if is_mutating(method) {
            "mutating"
        } else {
            "readOnly"
        };
        let g = self.inflight.get_or_create_owned(&KindLabels {
            request_kind: kind.into(),
        });
        g.inc();
        struct Done(Gauge);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        Done(g)
    }

    pub fn observe(
        &self,
        info: &RequestInfo,
        method: &str,
        dry_run: bool,
        code: u16,
        seconds: f64,
    ) {
        let verb = verb_label(info, method);
        let d = DurationLabels {
            component: "apiserver".into(),
            dry_run: if dry_run { "All".into() } else { String::new() },
            group: info.api_group.clone(),
            resource: info.resource.clone(),
            scope: scope(info),
            subresource: info.subresource.clone(),
            verb: verb.clone(),
            version: info.api_version.clone(),
        };
        // Long-running requests (watches) do not count towards latency, as upstream.
        if verb != "WATCH" {
            self.durations.get_or_create(&d).observe(seconds);
        }
        let r = RequestLabels {
            code: code.to_string(),
            component: d.component,
            dry_run: d.dry_run,
            group: d.group,
            resource: d.resource,
            scope: d.scope,
            subresource: d.subresource,
            verb: d.verb,
            version: d.version,
        };
        self.requests.get_or_create(&r).inc();
    }

    /// The exposition, with storage object counts and process metrics refreshed.
    /// Registers another part's metrics (the aggregator's) with this server's.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub async fn render(&self, api: &ApiServer) -> (String, &'static str) {
        for res in api.resources().values().filter(|r| r.view.is_none()) {
            let reg = &res.registry;
            let n = match &reg.cacher {
                Some(c) => c.len() as i64,
                None => reg
                    .store
                    .backend
                    .count(&reg.store.prefix)
                    .await
                    .unwrap_or(-1),
            };
            let label = reg.strategy.info().group_resource().to_string();
            self.storage_objects
                .get_or_create(&ResourceLabels { resource: label })
                .set(n);
        }
        self.process.refresh();
        component_base::metrics::render(&self.registry)
    }
}
