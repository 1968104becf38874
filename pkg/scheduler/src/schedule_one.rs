//! One scheduling cycle's algorithm (upstream `schedule_one.go`): PreFilter, Filter over
//! the nodes (in parallel, stopping once enough feasible nodes are found, starting where
//! the last cycle stopped), then PreScore and Score on the feasible ones, weighted, and
//! the best node (ties broken at random).

use crate::framework::runtime::Framework;
use crate::framework::{Code, CycleState, NodeInfo, NodeScore, PodInfo, Snapshot, Status};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Upstream's floor for nodes to find before scoring.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE: i32 = 5;
const DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE: i32 = 50;

/// How many feasible nodes to find before stopping: all of small clusters, else a
/// percentage shrinking with size (50% - nodes/125, at least 5%), at least 100.
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, all: usize) -> usize {
    let configured = percentage.unwrap_or(0);
    if all < MIN_FEASIBLE_NODES_TO_FIND || configured >= 100 {
        return all;
    }
    let pct = if configured == 0 {
        (DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE - (all / 125) as i32)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE)
    } else {
        configured
    };
    (all * pct as usize / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why no node fits (upstream `Diagnosis`).
#[derive(Debug, Default)]
pub struct Diagnosis {
    pub node_to_status: HashMap<String, Status>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
    pub unschedulable_plugins: HashSet<&'static str>,
    pub num_all_nodes: usize,
}

impl Diagnosis {
    /// Upstream's FitError message: `0/3 nodes are available: 1 Insufficient cpu, 2
    /// node(s) had untolerated taint {a: b}.` plus the PostFilter's account.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if !self.pre_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", self.pre_filter_msg));
        } else {
            let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
            for s in self.node_to_status.values() {
                for r in &s.reasons {
                    *hist.entry(r.as_str()).or_default() += 1;
                }
            }
            let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                msg.push_str(&format!(" {}.", parts.join(", ")));
            }
        }
        if !self.post_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", self.post_filter_msg));
        }
        msg
    }
}

pub enum Outcome {
    /// The chosen node, how many nodes were evaluated and how many fit.
    Scheduled {
        node: String,
        evaluated: usize,
        feasible: usize,
    },
    Unschedulable(Diagnosis),
    Error(String),
}

/// Runs every filter plugin on one node, stopping at the first rejection.
pub fn run_filters(fw: &Framework, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
    for p in &fw.filter {
        if state.skip_filter.contains(p.name()) {
            continue;
        }
        let s = p.filter(state, pod, node);
        if !s.is_success() {
            return s.with_plugin(p.name());
        }
    }
    Status::success()
}

/// Filters with the node's nominated pods of at least this pod's priority counted on it
/// (upstream `RunFilterPluginsWithNominatedPods`).
pub fn run_filters_with_nominated(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    snapshot: &Snapshot<'_>,
) -> Status {
    let nominated: Vec<&Arc<PodInfo>> = snapshot
        .nominated
        .get(&node.name)
        .into_iter()
        .flatten()
        .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
        .collect();
    if nominated.is_empty() {
        return run_filters(fw, state, pod, node);
    }
    let mut with = node.clone();
    for p in nominated {
        with.add_pod(p.clone());
    }
    run_filters(fw, state, pod, &with)
}

/// A small xorshift generator to break score ties without a dependency.
pub struct TieBreaker(u64);

impl TieBreaker {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        TieBreaker(seed | 1)
    }

    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

impl Default for TieBreaker {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
pub struct Algorithm {
    /// Where the next cycle starts filtering, so nodes share the early slots.
    pub next_start: usize,
    pub ties: TieBreaker,
}

impl Algorithm {
    pub fn schedule(
        &mut self,
        fw: &Framework,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
        state: &mut CycleState,
    ) -> Outcome {
        let nodes = snapshot.nodes;
        let mut diagnosis = Diagnosis {
            num_all_nodes: nodes.len(),
            ..Default::default()
        };
        if nodes.is_empty() {
            return Outcome::Unschedulable(diagnosis);
        }
        // PreFilter.
        let mut allowed: Option<HashSet<String>> = None;
        for p in &fw.pre_filter {
            let (result, status) = p.pre_filter(state, pod, snapshot);
            match status.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_filter.insert(p.name());
                    continue;
                }
                Code::Error => {
                    return Outcome::Error(format!(
                        "running PreFilter plugin {:?}: {}",
                        p.name(),
                        status.message()
                    ));
                }
                _ => {
                    diagnosis.pre_filter_msg = status.message();
                    diagnosis.unschedulable_plugins.insert(p.name());
                    for n in nodes {
                        diagnosis
                            .node_to_status
                            .insert(n.name.clone(), status.clone().with_plugin(p.name()));
                    }
                    return Outcome::Unschedulable(diagnosis);
                }
            }
            if let Some(r) = result {
                allowed = Some(match allowed {
                    None => r,
                    Some(a) => a.intersection(&r).cloned().collect(),
                });
            }
        }
        // A pod nominated by an earlier preemption tries that node first (upstream
        // `evaluateNominatedNode`): it fits there once its victims are gone.
        let nominated = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty());
        if let Some(node) = nominated.and_then(|n| nodes.iter().find(|x| x.name == n))
            && allowed.as_ref().is_none_or(|a| a.contains(&node.name))
            && run_filters_with_nominated(fw, state, pod, node, snapshot).is_success()
        {
            return Outcome::Scheduled {
                node: node.name.clone(),
                evaluated: 1,
                feasible: 1,
            };
        }
        // Filter, in parallel, from where the last cycle stopped, a batch of nodes at a
        // time until enough fit.
        let candidates: Option<Vec<usize>> = allowed.as_ref().map(|names| {
            (0..nodes.len())
                .filter(|&i| names.contains(&nodes[i].name))
                .collect()
        });
        let total = candidates.as_ref().map_or(nodes.len(), Vec::len);
        let start = self.next_start % nodes.len();
        let index = |k: usize| match &candidates {
            Some(c) => c[k],
            None => (start + k) % nodes.len(),
        };
        let to_find = num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score, nodes.len());
        let batch = to_find.max(64);
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut processed = 0;
        let mut k = 0;
        while k < total && feasible.len() < to_find {
            let end = (k + batch).min(total);
            let statuses: Vec<Status> = (k..end)
                .into_par_iter()
                .with_min_len(32)
                .map(|j| run_filters_with_nominated(fw, state, pod, &nodes[index(j)], snapshot))
                .collect();
            for (j, s) in (k..end).zip(statuses) {
                if feasible.len() >= to_find {
                    break;
                }
                processed = j + 1;
                let node = &nodes[index(j)];
                if s.is_success() {
                    feasible.push(node);
                } else {
                    if s.code == Code::Error {
                        return Outcome::Error(format!(
                            "running {:?} filter plugin: {}",
                            s.plugin,
                            s.message()
                        ));
                    }
                    diagnosis.unschedulable_plugins.insert(s.plugin);
                    diagnosis.node_to_status.insert(node.name.clone(), s);
                }
            }
            k = end;
        }
        if allowed.is_none() {
            self.next_start = (self.next_start + processed) % nodes.len();
        }
        if feasible.is_empty() {
            if let Some(names) = &allowed {
                // Nodes PreFilter ruled out count as not matching its result.
                for n in nodes.iter().filter(|n| !names.contains(&n.name)) {
                    diagnosis.node_to_status.insert(
                        n.name.clone(),
                        Status::unresolvable("node is filtered out by the prefilter result"),
                    );
                }
            }
            return Outcome::Unschedulable(diagnosis);
        }
        let evaluated = processed.max(feasible.len());
        if feasible.len() == 1 {
            return Outcome::Scheduled {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            };
        }
        // PreScore and Score.
        for p in &fw.pre_score {
            let s = p.pre_score(state, pod, &feasible, snapshot);
            match s.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_score.insert(p.name());
                }
                _ => {
                    return Outcome::Error(format!(
                        "running PreScore plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ));
                }
            }
        }
        let mut totals = vec![0i64; feasible.len()];
        for (p, weight) in &fw.score {
            if state.skip_score.contains(p.name()) {
                continue;
            }
            let state_ref = &*state;
            let mut scores: Vec<NodeScore> = feasible
                .par_iter()
                .with_min_len(32)
                .enumerate()
                .map(|(node, n)| NodeScore {
                    node,
                    score: p.score(state_ref, pod, n, snapshot),
                })
                .collect();
            p.normalize_score(state, pod, &mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s.score * weight;
            }
        }
        // The best score; among equals each is as likely (reservoir sampling).
        let mut best = 0;
        let mut ties = 1;
        for i in 1..totals.len() {
            if totals[i] > totals[best] {
                best = i;
                ties = 1;
            } else if totals[i] == totals[best] {
                ties += 1;
                if self.ties.next(ties) == 0 {
                    best = i;
                }
            }
        }
        Outcome::Scheduled {
            node: feasible[best].name.clone(),
            evaluated,
            feasible: feasible.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_percentage() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }

    #[test]
    fn fit_error_message() {
        let mut d = Diagnosis {
            num_all_nodes: 3,
            ..Default::default()
        };
        d.node_to_status
            .insert("a".into(), Status::unschedulable("Insufficient cpu"));
        for n in ["b", "c"] {
            d.node_to_status.insert(
                n.into(),
                Status::unresolvable("node(s) had untolerated taint {k: v}"),
            );
        }
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
        );
    }
}
