//! PodTopologySpread (upstream `podtopologyspread`): `DoNotSchedule` constraints keep
//! the skew (matching pods in a domain + this pod - the least populated domain) within
//! `maxSkew`; `ScheduleAnyway` constraints prefer the less populated domains. Domains
//! count only nodes the pod could go to (its node affinity and selector, as
//! `nodeAffinityPolicy: Honor`), and only nodes carrying the constraint's key.

use super::nodeaffinity::required_matches;
use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, Owners, Plugin, PodInfo, PreFilterResult,
    Snapshot, Status,
};
use apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const FILTER_KEY: &str = "PreFilterPodTopologySpread";
const SCORE_KEY: &str = "PreScorePodTopologySpread";

pub struct PodTopologySpread;

struct Constraint {
    key: String,
    max_skew: i64,
    min_domains: i64,
    /// None (no labelSelector) matches no pod.
    selector: Option<Selector>,
    self_match: bool,
}

/// The constraints of one kind (`DoNotSchedule` or `ScheduleAnyway`), with their
/// selectors (plus `matchLabelKeys` taken from the pod's own labels).
fn constraints(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    let list: &[TopologySpreadConstraint] = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    list.iter()
        .filter(|c| c.when_unsatisfiable == when)
        .filter_map(|c| {
            let mut sel = c
                .label_selector
                .as_ref()
                .map(|s| serde_json::to_value(s).unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
            for k in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels().get(k) {
                    sel["matchLabels"][k] = serde_json::Value::String(v.clone());
                }
            }
            let selector = if sel.is_null() {
                None
            } else {
                Some(Selector::from_label_selector(Some(&sel)).ok()?)
            };
            let self_match = selector.as_ref().is_some_and(|s| s.matches(pod.labels()));
            Some(Constraint {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                selector,
                self_match,
            })
        })
        .collect()
}

/// Matching pods in the pod's namespace on a node, terminating ones excluded.
fn count_on(node: &NodeInfo, ns: &str, selector: &Option<Selector>) -> i64 {
    let Some(selector) = selector else { return 0 };
    node.pods
        .iter()
        .filter(|p| {
            p.namespace() == ns
                && p.pod.metadata.deletion_timestamp.is_none()
                && selector.matches(p.labels())
        })
        .count() as i64
}

struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value -> matching pods.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the smallest count (0 while fewer domains than minDomains).
    min: Vec<i64>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        super::names::POD_TOPOLOGY_SPREAD
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let constraints = constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let ns = pod.namespace();
        let n = constraints.len();
        // Per constraint, in parallel over nodes: matching pods per domain value.
        let counts: Vec<HashMap<&str, i64>> = snapshot
            .nodes
            .par_iter()
            .with_min_len(64)
            .filter(|node| {
                let labels = node.labels();
                constraints.iter().all(|c| labels.contains_key(&c.key))
                    && required_matches(pod, node)
            })
            .fold(
                || vec![HashMap::new(); n],
                |mut acc: Vec<HashMap<&str, i64>>, node| {
                    let labels = node.labels();
                    for (i, c) in constraints.iter().enumerate() {
                        *acc[i].entry(labels[&c.key].as_str()).or_default() +=
                            count_on(node, ns, &c.selector);
                    }
                    acc
                },
            )
            .reduce(|| vec![HashMap::new(); n], merge_counts);
        let counts: Vec<HashMap<String, i64>> = counts
            .into_iter()
            .map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            .collect();
        let min = constraints
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                if (domains.len() as i64) < c.min_domains {
                    0
                } else {
                    domains.values().copied().min().unwrap_or(0)
                }
            })
            .collect();
        state.write(
            FILTER_KEY,
            FilterState {
                constraints,
                counts,
                min,
            },
        );
        (None, Status::success())
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<FilterState>(FILTER_KEY) else {
            return Status::success();
        };
        let labels = node.labels();
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.key) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            let count = st.counts[i].get(value).copied().unwrap_or(0);
            let skew = count + i64::from(c.self_match) - st.min[i];
            if skew > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot<'_>,
    ) -> Status {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        // Pods without constraints of their own spread by the system defaults, over the
        // pods of their services and controller.
        let (constraints, require_all) = if own {
            (constraints(pod, "ScheduleAnyway"), true)
        } else {
            (system_defaults(pod, snapshot.owners), false)
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        let ns = pod.namespace();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        // Domains are those of the feasible nodes; pods are counted on every node in them.
        for n in nodes {
            let labels = n.labels();
            for (i, c) in constraints.iter().enumerate() {
                if let Some(v) = labels.get(&c.key) {
                    counts[i].entry(v.clone()).or_default();
                }
            }
        }
        for node in snapshot.nodes {
            let labels = node.labels();
            if !required_matches(pod, node) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if let Some(v) = labels.get(&c.key)
                    && let Some(slot) = counts[i].get_mut(v)
                {
                    *slot += count_on(node, ns, &c.selector);
                }
            }
        }
        let weights = counts.iter().map(|d| ((d.len() + 2) as f64).ln()).collect();
        state.write(
            SCORE_KEY,
            ScoreState {
                constraints,
                counts,
                weights,
                require_all,
            },
        );
        Status::success()
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        let Some(st) = state.read::<ScoreState>(SCORE_KEY) else {
            return 0;
        };
        let labels: &BTreeMap<String, String> = node.labels();
        let mut score = 0.0;
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.key) else {
                if st.require_all {
                    return IGNORED;
                }
                continue;
            };
            let count = st.counts[i].get(v).copied().unwrap_or(0);
            score += count as f64 * st.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// Fewer matching pods is better; nodes missing a key score 0.
    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) {
        let valid = scores.iter().filter(|s| s.score != IGNORED);
        let (min, max) = valid.fold((i64::MAX, 0), |(lo, hi), s| {
            (lo.min(s.score), hi.max(s.score))
        });
        for s in scores.iter_mut() {
            s.score = if s.score == IGNORED {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - s.score) / max
            };
        }
    }
}

fn merge_counts<'a>(
    mut a: Vec<HashMap<&'a str, i64>>,
    b: Vec<HashMap<&'a str, i64>>,
) -> Vec<HashMap<&'a str, i64>> {
    for (x, y) in a.iter_mut().zip(b) {
        for (k, v) in y {
            *x.entry(k).or_default() += v;
        }
    }
    a
}

/// A node without the constraint's key (scored 0 after normalizing).
const IGNORED: i64 = i64::MIN;

struct ScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
    /// Own constraints ignore nodes missing a key; system defaults score what they can.
    require_all: bool,
}

/// Upstream's system default constraints (`defaultingType: System`): hostname with
/// maxSkew 3 and zone with maxSkew 5, both ScheduleAnyway.
fn system_defaults(pod: &PodInfo, owners: &Owners) -> Vec<Constraint> {
    let Some(selector) = default_selector(pod, owners) else {
        return Vec::new();
    };
    [
        ("kubernetes.io/hostname", 3),
        ("topology.kubernetes.io/zone", 5),
    ]
    .into_iter()
    .map(|(key, max_skew)| Constraint {
        key: key.into(),
        max_skew,
        min_domains: 1,
        self_match: selector.matches(pod.labels()),
        selector: Some(selector.clone()),
    })
    .collect()
}

/// Upstream's `helper.DefaultSelector`: the selectors of the services selecting the pod,
/// and of its controlling ReplicationController, ReplicaSet or StatefulSet, merged.
pub fn default_selector(pod: &PodInfo, owners: &Owners) -> Option<Selector> {
    let ns = pod.namespace();
    let prefix = format!("{ns}/");
    let labels = pod.labels();
    let mut match_labels: BTreeMap<String, String> = BTreeMap::new();
    for (key, svc) in &owners.services {
        if !key.starts_with(&prefix) {
            continue;
        }
        let Some(sel) = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            match_labels.extend(sel.clone());
        }
    }
    let mut expressions = Vec::new();
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if let Some(o) = owner {
        let key = format!("{prefix}{}", o.name);
        let selector = match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "ReplicationController") => {
                if let Some(sel) = owners
                    .replication_controllers
                    .get(&key)
                    .and_then(|rc| rc.spec.as_ref()?.selector.clone())
                {
                    match_labels.extend(sel);
                }
                None
            }
            ("apps/v1", "ReplicaSet") => owners
                .replica_sets
                .get(&key)
                .and_then(|rs| rs.spec.as_ref().map(|s| s.selector.clone())),
            ("apps/v1", "StatefulSet") => owners
                .stateful_sets
                .get(&key)
                .and_then(|ss| ss.spec.as_ref().map(|s| s.selector.clone())),
            _ => None,
        };
        if let Some(sel) = selector {
            match_labels.extend(sel.match_labels.unwrap_or_default());
            expressions.extend(sel.match_expressions.unwrap_or_default());
        }
    }
    if match_labels.is_empty() && expressions.is_empty() {
        return None;
    }
    let json = serde_json::json!({"matchLabels": match_labels, "matchExpressions": expressions});
    Selector::from_label_selector(Some(&json)).ok()
}
