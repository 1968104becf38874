//! NodeAffinity (upstream `nodeaffinity`): `nodeSelector` and required node affinity
//! must match the node; preferred terms add their weights to the score.

use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, Plugin, PodInfo, PreFilterResult, Snapshot,
    Status, default_normalize_score,
};
use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use std::collections::{BTreeMap, HashSet};

pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// One term: every expression on labels and every field requirement (`metadata.name`).
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        // An empty term matches nothing.
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node_name)))
}

/// Whether the pod's nodeSelector and required node affinity accept the node.
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = &pod.pod.spec else {
        return true;
    };
    let labels = node.labels();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(r) => r
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, &node.name)),
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        super::names::NODE_AFFINITY
    }

    /// Terms that all name nodes by `metadata.name In [...]` narrow the cycle to them.
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let terms = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.as_slice())
            .unwrap_or_default();
        let mut names = HashSet::new();
        for t in terms {
            let by_name: Vec<&NodeSelectorRequirement> = t
                .match_fields
                .iter()
                .flatten()
                .filter(|f| f.key == "metadata.name" && f.operator == "In")
                .collect();
            if by_name.is_empty() {
                return (None, Status::success());
            }
            names.extend(
                by_name
                    .iter()
                    .flat_map(|f| f.values.iter().flatten().cloned()),
            );
        }
        if terms.is_empty() {
            return (None, Status::success());
        }
        if names.is_empty() {
            return (
                Some(names),
                Status::unresolvable("node(s) didn't match Pod's node affinity/selector")
                    .with_plugin(self.name()),
            );
        }
        (Some(names), Status::success())
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default();
        preferred
            .iter()
            .filter(|p| p.weight != 0 && term_matches(&p.preference, node.labels(), &node.name))
            .map(|p| i64::from(p.weight))
            .sum()
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
    }
}
