//! API Priority and Fairness (upstream `apiserver/pkg/util/flowcontrol`): each request is
//! classified by the first matching FlowSchema into a priority level, whose share of the
//! server's concurrency (`--max-requests-inflight` + `--max-mutating-requests-inflight`
//! seats, split by nominalConcurrencyShares) it waits for in fair queues or is refused
//! with 429. Responses name the schema and level in `X-Kubernetes-PF-*` headers.

pub mod classify;
pub mod queueset;

use crate::authentication::UserInfo;
use crate::endpoints::request::RequestInfo;
use apimachinery::StatusError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use queueset::{QueueSet, Queuing, Seats};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

pub const FLOW_SCHEMA_UID_HEADER: &str = "x-kubernetes-pf-flowschema-uid";
pub const PRIORITY_LEVEL_UID_HEADER: &str = "x-kubernetes-pf-prioritylevel-uid";

/// How long a request may wait in a queue (upstream: a quarter of the 60s request
/// timeout).
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    pub flow_schema: String,
    pub priority_level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub flow_schema: String,
    pub priority_level: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitLabels {
    pub flow_schema: String,
    pub priority_level: String,
    pub execute: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub priority_level: String,
}

fn wait_histogram() -> Histogram {
    Histogram::new([
        0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
    ])
}

/// Upstream's `apiserver_flowcontrol_*` metrics.
pub struct Metrics {
    pub rejected: Family<RejectLabels, Counter>,
    pub dispatched: Family<FlowLabels, Counter>,
    pub executing: Family<FlowLabels, Gauge>,
    pub in_queue: Family<FlowLabels, Gauge>,
    pub wait: Family<WaitLabels, Histogram, fn() -> Histogram>,
    pub nominal_limit: Family<LevelLabels, Gauge>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    rejected: Family::default(),
    dispatched: Family::default(),
    executing: Family::default(),
    in_queue: Family::default(),
    wait: Family::new_with_constructor(wait_histogram),
    nominal_limit: Family::default(),
});

impl Metrics {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "apiserver_flowcontrol_rejected_requests",
            "Number of requests rejected by API Priority and Fairness subsystem",
            self.rejected.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_dispatched_requests",
            "Number of requests executed by API Priority and Fairness subsystem",
            self.dispatched.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_current_executing_requests",
            "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            self.executing.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_current_inqueue_requests",
            "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            self.in_queue.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_request_wait_duration_seconds",
            "Length of time a request spent waiting in its queue",
            self.wait.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_nominal_limit_seats",
            "Nominal number of execution seats configured for each priority level",
            self.nominal_limit.clone(),
        );
    }
}

pub struct Level {
    pub name: String,
    pub uid: String,
    pub exempt: bool,
    set: Arc<QueueSet>,
    /// The configuration the queue set was built from (kept across unchanged reloads).
    shape: (usize, Option<Queuing>),
}

struct Schema {
    name: String,
    uid: String,
    object: Value,
    level: Arc<Level>,
}

#[derive(Default)]
struct Snapshot {
    schemas: Vec<Schema>,
    levels: HashMap<String, Arc<Level>>,
}

/// A request turned away: the 429 and the classification it got.
pub struct Refused {
    pub status: StatusError,
    pub flow_schema_uid: String,
    pub priority_level_uid: String,
}

/// The classification and, unless exempt, the seats a request holds while it runs.
pub struct Admitted {
    pub flow_schema_uid: String,
    pub priority_level_uid: String,
    labels: FlowLabels,
    _seats: Option<Seats>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        METRICS.executing.get_or_create(&self.labels).dec();
    }
}

pub struct Controller {
    /// Seats the whole server runs at once.
    server_concurrency: usize,
    snapshot: RwLock<Arc<Snapshot>>,
}

fn int(v: &Value) -> Option<usize> {
    v.as_u64().map(|n| n as usize)
}

/// The level's seats and queuing from its spec, given the sum of all levels' shares.
fn shape(plc: &Value, server: usize, total_shares: usize) -> (usize, Option<Queuing>) {
    let limited = &plc["spec"]["limited"];
    let shares = int(&limited["nominalConcurrencyShares"]).unwrap_or(30);
    let limit = (server * shares).div_ceil(total_shares.max(1));
    let response = &limited["limitResponse"];
    let queuing = (response["type"] == "Queue").then(|| {
        let q = &response["queuing"];
        Queuing {
            queues: int(&q["queues"]).unwrap_or(64).max(1),
            hand_size: int(&q["handSize"]).unwrap_or(8).max(1),
            queue_length_limit: int(&q["queueLengthLimit"]).unwrap_or(50).max(1),
        }
    });
    (limit, queuing)
}

fn uid(o: &Value) -> String {
    o["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Controller {
    pub fn new(server_concurrency: usize) -> Self {
        Controller {
            server_concurrency: server_concurrency.max(1),
            snapshot: RwLock::default(),
        }
    }

    /// Installs the current FlowSchemas and PriorityLevelConfigurations. Levels whose
    /// shape did not change keep their queues and running requests.
    pub fn update(&self, flow_schemas: &[Value], levels: &[Value]) {
        let old = self.snapshot.read().unwrap().clone();
        let total: usize = levels
            .iter()
            .map(|l| {
                let spec = &l["spec"];
                int(&spec["limited"]["nominalConcurrencyShares"])
                    .or_else(|| int(&spec["exempt"]["nominalConcurrencyShares"]))
                    .unwrap_or(if spec["type"] == "Exempt" { 0 } else { 30 })
            })
            .sum();
        let mut next = Snapshot::default();
        for plc in levels {
            let exempt = plc["spec"]["type"] == "Exempt";
            let shape = shape(plc, self.server_concurrency, total);
            let name = name(plc);
            let set = match old.levels.get(&name) {
                Some(l) if l.shape == shape && l.exempt == exempt => l.set.clone(),
                _ => QueueSet::new(shape.0, shape.1),
            };
            if !exempt {
                METRICS
                    .nominal_limit
                    .get_or_create(&LevelLabels {
                        priority_level: name.clone(),
                    })
                    .set(shape.0 as i64);
            }
            next.levels.insert(
                name.clone(),
                Arc::new(Level {
                    name,
                    uid: uid(plc),
                    exempt,
                    set,
                    shape,
                }),
            );
        }
        let mut schemas: Vec<&Value> = flow_schemas.iter().collect();
        schemas.sort_by_key(|fs| {
            (
                fs["spec"]["matchingPrecedence"].as_i64().unwrap_or(1000),
                name(fs),
            )
        });
        for fs in schemas {
            let level_name = fs["spec"]["priorityLevelConfiguration"]["name"]
                .as_str()
                .unwrap_or_default();
            // A dangling schema (its level does not exist) matches nothing.
            if let Some(level) = next.levels.get(level_name) {
                next.schemas.push(Schema {
                    name: name(fs),
                    uid: uid(fs),
                    object: fs.clone(),
                    level: level.clone(),
                });
            }
        }
        *self.snapshot.write().unwrap() = Arc::new(next);
    }

    /// Classifies the request and waits for its seats; a refusal is a 429 `Status`.
    pub async fn admit(
        &self,
        user: &UserInfo,
        info: &RequestInfo,
    ) -> Result<Option<Admitted>, Refused> {
        let snapshot = self.snapshot.read().unwrap().clone();
        // Before the configuration is loaded (or after catch-all is removed), nothing is
        // limited.
        let Some(schema) = snapshot
            .schemas
            .iter()
            .find(|s| classify::matches(&s.object, user, info))
        else {
            return Ok(None);
        };
        let level = &schema.level;
        let labels = FlowLabels {
            flow_schema: schema.name.clone(),
            priority_level: level.name.clone(),
        };
        let seats = if level.exempt {
            None
        } else {
            let mut h = std::hash::DefaultHasher::new();
            (
                &schema.name,
                classify::distinguisher(&schema.object, user, info),
            )
                .hash(&mut h);
            let queued = METRICS.in_queue.get_or_create(&labels).clone();
            queued.inc();
            let started = Instant::now();
            let got = level.set.acquire(1, h.finish(), MAX_QUEUE_WAIT).await;
            queued.dec();
            let wait = |execute: bool| {
                METRICS
                    .wait
                    .get_or_create(&WaitLabels {
                        flow_schema: labels.flow_schema.clone(),
                        priority_level: labels.priority_level.clone(),
                        execute: execute.to_string(),
                    })
                    .observe(started.elapsed().as_secs_f64());
            };
            match got {
                Ok(seats) => {
                    wait(true);
                    Some(seats)
                }
                Err(why) => {
                    wait(false);
                    METRICS
                        .rejected
                        .get_or_create(&RejectLabels {
                            flow_schema: labels.flow_schema.clone(),
                            priority_level: labels.priority_level.clone(),
                            reason: why.reason().into(),
                        })
                        .inc();
                    return Err(Refused {
                        status: StatusError::too_many_requests(1),
                        flow_schema_uid: schema.uid.clone(),
                        priority_level_uid: level.uid.clone(),
                    });
                }
            }
        };
        METRICS.dispatched.get_or_create(&labels).inc();
        METRICS.executing.get_or_create(&labels).inc();
        Ok(Some(Admitted {
            flow_schema_uid: schema.uid.clone(),
            priority_level_uid: level.uid.clone(),
            labels,
            _seats: seats,
        }))
    }
}
