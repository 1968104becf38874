//! DefaultPreemption (upstream `defaultpreemption` + `framework/preemption`): when no
//! node fits, find nodes where evicting lower-priority pods would make room, keep as
//! many of those pods as still fit (the most important first, PodDisruptionBudget
//! violators reprieved first), and pick the node whose victims matter least: fewest
//! budget violations, lowest highest priority, lowest priority sum, fewest victims.

use crate::framework::runtime::Framework;
use crate::framework::{
    Code, CycleState, NodeInfo, Plugin, PodInfo, PostFilterContext, PostFilterResult, Status,
};
use crate::schedule_one::{Diagnosis, run_filters};
use apimachinery::labels::Selector;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use std::collections::HashMap;
use std::sync::Arc;

pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        super::names::DEFAULT_PREEMPTION
    }

    fn post_filter(
        &self,
        ctx: &PostFilterContext<'_>,
        state: &CycleState,
        pod: &PodInfo,
    ) -> PostFilterResult {
        match preempt(
            ctx.framework,
            state,
            pod,
            ctx.nodes,
            ctx.diagnosis,
            ctx.pdbs,
        ) {
            Outcome::Failed(why) => PostFilterResult::Unresolved(format!("preemption: {why}")),
            Outcome::Preempt(c) => PostFilterResult::Preempt(c),
        }
    }
}

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

#[derive(Debug)]
pub enum Outcome {
    /// Why preemption did not help: the PostFilter message (without "preemption: ").
    Failed(String),
    Preempt(Candidate),
}

fn start_time(p: &PodInfo) -> Option<k8s_openapi::jiff::Timestamp> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
}

/// Upstream's `MoreImportantPod`: higher priority, then the one that started first.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (start_time(a), start_time(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
}

/// Budgets and how many more disruptions each allows.
pub struct Budgets<'a> {
    pdbs: Vec<(&'a PodDisruptionBudget, Selector, i32)>,
}

impl<'a> Budgets<'a> {
    pub fn new(pdbs: &'a [Arc<PodDisruptionBudget>]) -> Self {
        let pdbs = pdbs
            .iter()
            .filter_map(|p| {
                let sel = p.spec.as_ref().and_then(|s| s.selector.as_ref())?;
                let sel =
                    Selector::from_label_selector(Some(&serde_json::to_value(sel).ok()?)).ok()?;
                let allowed = p
                    .status
                    .as_ref()
                    .map(|s| s.disruptions_allowed)
                    .unwrap_or(0);
                Some((p.as_ref(), sel, allowed))
            })
            .collect();
        Budgets { pdbs }
    }

    /// Splits victims into those whose eviction would violate a budget and the rest,
    /// spending the budgets' allowances in order.
    fn split(&self, victims: Vec<Arc<PodInfo>>) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
        let mut allowed: Vec<i32> = self.pdbs.iter().map(|(_, _, a)| *a).collect();
        let (mut violating, mut fine) = (Vec::new(), Vec::new());
        for v in victims {
            let mut violates = false;
            for (i, (pdb, sel, _)) in self.pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(v.namespace())
                    || !sel.matches(v.labels())
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violates = true;
                }
            }
            if violates {
                violating.push(v)
            } else {
                fine.push(v)
            }
        }
        (violating, fine)
    }
}

/// Whether the pod may preempt at all: the message when it may not.
pub fn ineligible(pod: &PodInfo, nodes: &[NodeInfo]) -> Option<String> {
    let spec = pod.pod.spec.as_ref()?;
    if spec.preemption_policy.as_deref() == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())?;
    let node = nodes.iter().find(|n| n.name == nominated)?;
    let terminating = node
        .pods
        .iter()
        .any(|p| p.priority < pod.priority && p.pod.metadata.deletion_timestamp.is_some());
    terminating.then(|| "not eligible due to a terminating pod on the nominated node".to_string())
}

/// Victims on one node, or why there can be none.
fn select_victims(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    budgets: &Budgets<'_>,
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let mut trial = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for v in &potential {
        trial.remove_pod(&v.uid);
    }
    let fits = run_filters(fw, state, pod, &trial);
    if !fits.is_success() {
        return Err(fits);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = budgets.split(potential);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (group, counts) in [(violating, true), (fine, false)] {
        for v in group {
            trial.add_pod(v.clone());
            if !run_filters(fw, state, pod, &trial).is_success() {
                trial.remove_pod(&v.uid);
                if counts {
                    violations += 1;
                }
                victims.push(v);
            }
        }
    }
    Ok((victims, violations))
}

/// Upstream's `pickOneNodeForPreemption` criteria, in order.
fn pick(mut candidates: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        // Offset so negative priorities still sum to comparable positives.
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (c.pdb_violations, highest, sum, c.victims.len())
    };
    candidates.sort_by_key(key);
    candidates.into_iter().next()
}

pub fn preempt(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    nodes: &[NodeInfo],
    diagnosis: &Diagnosis,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> Outcome {
    if let Some(why) = ineligible(pod, nodes) {
        return Outcome::Failed(why);
    }
    let budgets = Budgets::new(pdbs);
    let mut statuses: HashMap<String, Status> = HashMap::new();
    let mut candidates = Vec::new();
    for node in nodes {
        let helpful = diagnosis
            .node_to_status
            .get(&node.name)
            .is_none_or(|s| s.code == Code::Unschedulable);
        if !helpful {
            statuses.insert(node.name.clone(), Status::unresolvable(NOT_HELPFUL));
            continue;
        }
        match select_victims(fw, state, pod, node, &budgets) {
            Ok((victims, pdb_violations)) if !victims.is_empty() => candidates.push(Candidate {
                node: node.name.clone(),
                victims,
                pdb_violations,
            }),
            Ok(_) => {
                statuses.insert(
                    node.name.clone(),
                    Status::error(format!(
                        "expected at least one victim pod on node {:?}",
                        node.name
                    )),
                );
            }
            Err(s) => {
                statuses.insert(node.name.clone(), s);
            }
        }
    }
    match pick(candidates) {
        Some(c) => Outcome::Preempt(c),
        None => {
            let d = Diagnosis {
                node_to_status: statuses,
                num_all_nodes: nodes.len(),
                ..Default::default()
            };
            Outcome::Failed(d.message().trim_end_matches('.').to_string())
        }
    }
}
