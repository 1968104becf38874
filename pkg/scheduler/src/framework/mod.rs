//! The scheduling framework (upstream `pkg/scheduler/framework`): plugins at the
//! extension points of a scheduling cycle (PreEnqueue, QueueSort, PreFilter, Filter,
//! PostFilter, PreScore, Score + NormalizeScore, Reserve, Permit) and a binding cycle
//! (PreBind, Bind, PostBind), with statuses whose reasons become upstream's messages.

pub mod plugins;
pub mod runtime;
pub mod types;

use futures::future::BoxFuture;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
pub use types::{NodeInfo, PodInfo, Resource};

pub const MAX_NODE_SCORE: i64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    Error,
    /// Might fit after preemption or other changes.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    Wait,
    /// The plugin has nothing to do for this pod (its later points are skipped too).
    Skip,
    /// PreEnqueue: the pod waits (scheduling gates).
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that set it (unschedulable pods wait for events relevant to it).
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Self::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Code::Error, reason)
    }

    pub fn skip() -> Self {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = plugin;
        self
    }

    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data plugins compute in PreFilter/PreScore and read in Filter/Score, per cycle.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    /// Plugins whose Filter (or Score) is skipped for this pod.
    pub skip_filter: HashSet<&'static str>,
    pub skip_score: HashSet<&'static str>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, v: T) {
        self.data.insert(key, Box::new(v));
    }

    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|b| b.downcast_ref())
    }
}

/// Nodes a PreFilter plugin narrows the cycle to (None: all).
pub type PreFilterResult = Option<HashSet<String>>;

/// A node's score from one plugin, before weights; `node` indexes the cycle's feasible
/// nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeScore {
    pub node: usize,
    pub score: i64,
}

/// What the scheduler shows plugins of the cluster beyond the node they look at.
pub struct Snapshot<'a> {
    pub nodes: &'a [NodeInfo],
    /// How many nodes have each image (ImageLocality spreads by it).
    pub image_nodes: &'a HashMap<String, usize>,
    /// Pending pods nominated to each node by preemption: pods of equal or higher
    /// priority count there as if placed, so others do not take the room they made.
    pub nominated: &'a HashMap<String, Vec<Arc<PodInfo>>>,
    /// Claims, volumes, classes and CSI nodes for the volume plugins.
    pub volumes: &'a Volumes,
    /// Services and workload controllers, whose selectors give default spreading.
    pub owners: &'a Owners,
}

/// Objects whose selectors group pods (upstream `helper.DefaultSelector`'s listers),
/// keyed by `namespace/name`.
#[derive(Clone, Default)]
pub struct Owners {
    pub services: HashMap<String, Arc<k8s_openapi::api::core::v1::Service>>,
    pub replication_controllers:
        HashMap<String, Arc<k8s_openapi::api::core::v1::ReplicationController>>,
    pub replica_sets: HashMap<String, Arc<k8s_openapi::api::apps::v1::ReplicaSet>>,
    pub stateful_sets: HashMap<String, Arc<k8s_openapi::api::apps::v1::StatefulSet>>,
}

/// The storage objects the volume plugins read (upstream's listers).
#[derive(Clone, Default)]
pub struct Volumes {
    /// `namespace/name` -> claim.
    pub claims: HashMap<String, Arc<k8s_openapi::api::core::v1::PersistentVolumeClaim>>,
    pub volumes: HashMap<String, Arc<k8s_openapi::api::core::v1::PersistentVolume>>,
    pub classes: HashMap<String, Arc<k8s_openapi::api::storage::v1::StorageClass>>,
    pub csi_nodes: HashMap<String, Arc<k8s_openapi::api::storage::v1::CSINode>>,
    pub csi_drivers: HashMap<String, Arc<k8s_openapi::api::storage::v1::CSIDriver>>,
    /// `namespace/name` -> the capacity a driver published.
    pub capacities: HashMap<String, Arc<k8s_openapi::api::storage::v1::CSIStorageCapacity>>,
}

/// A scheduling plugin; it implements the extension points it is enabled at.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// PreEnqueue: whether the pod may enter the active queue at all.
    fn pre_enqueue(&self, _pod: &PodInfo) -> Status {
        Status::success()
    }

    /// PreFilter: checks and computations done once per cycle.
    fn pre_filter(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        (None, Status::success())
    }

    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot<'_>,
    ) -> Status {
        Status::success()
    }

    fn score(
        &self,
        _state: &CycleState,
        _pod: &PodInfo,
        _node: &NodeInfo,
        _snapshot: &Snapshot<'_>,
    ) -> i64 {
        0
    }

    /// Brings this plugin's scores to 0..=MAX_NODE_SCORE.
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [NodeScore]) {}

    /// PostFilter: what could make room when no node fits.
    fn post_filter(
        &self,
        _ctx: &PostFilterContext<'_>,
        _state: &CycleState,
        _pod: &PodInfo,
    ) -> PostFilterResult {
        PostFilterResult::Unresolved(String::new())
    }

    /// Reserve: takes, in the plugin's own bookkeeping, what the pod uses on the chosen
    /// node; a failure unreserves every plugin.
    fn reserve(&self, _state: &mut CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    /// Unreserve: gives back what Reserve took (a later point or the binding failed).
    fn unreserve(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) {}

    /// Permit: approves the binding (Success) or rejects it.
    fn permit(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    /// PreBind: what must exist before the pod is bound (runs off the scheduling loop).
    fn pre_bind<'a>(
        &'a self,
        _ctx: &'a BindContext,
        _state: &'a CycleState,
        _pod: &'a PodInfo,
        _node: &'a str,
    ) -> BoxFuture<'a, Status> {
        Box::pin(async { Status::success() })
    }

    /// Bind: binds the pod; Skip leaves it to the next Bind plugin.
    fn bind<'a>(
        &'a self,
        _ctx: &'a BindContext,
        _state: &'a CycleState,
        _pod: &'a PodInfo,
        _node: &'a str,
    ) -> BoxFuture<'a, Status> {
        Box::pin(async { Status::skip() })
    }

    /// PostBind: informational, after a successful bind.
    fn post_bind(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) {}
}

/// What PostFilter plugins see beyond the pod: the framework (to re-run filters), every
/// node, and the budgets that protect pods.
pub struct PostFilterContext<'a> {
    pub framework: &'a runtime::Framework,
    pub nodes: &'a [NodeInfo],
    pub diagnosis: &'a crate::schedule_one::Diagnosis,
    pub pdbs: &'a [Arc<k8s_openapi::api::policy::v1::PodDisruptionBudget>],
}

/// A PostFilter plugin's answer.
#[derive(Debug)]
pub enum PostFilterResult {
    /// It cannot help; the reason (if any) joins the pod's unschedulable message.
    Unresolved(String),
    /// Evicting these victims makes room on a node the pod is nominated to.
    Preempt(plugins::defaultpreemption::Candidate),
}

/// What the binding cycle's plugins act with.
pub struct BindContext {
    pub client: kube::Client,
    pub limiter: Arc<client_go::flowcontrol::RateLimiter>,
}

/// What plugins share across profiles and cycles (upstream's framework `Handle`).
#[derive(Clone, Default)]
pub struct Handle {
    /// Volumes chosen for pods whose binding is under way.
    pub assumed_volumes: Arc<plugins::volume::binding::AssumedVolumes>,
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=max by the highest score, optionally
/// reversed (fewer is better).
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [NodeScore]) {
    let highest = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = max * s.score / highest;
        s.score = if reverse { max - v } else { v };
    }
}

pub type PluginRef = Arc<dyn Plugin>;
