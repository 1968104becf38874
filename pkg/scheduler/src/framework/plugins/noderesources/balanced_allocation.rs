//! NodeResourcesBalancedAllocation (upstream `noderesources/balanced_allocation.go`):
//! favours nodes whose cpu and memory would be used in similar fractions, score
//! `(1 - standard deviation of the fractions) * 100`. Pods requesting nothing skip it.

use super::ResourceSpec;
use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, Snapshot, Status};

pub struct BalancedAllocation {
    pub resources: Vec<ResourceSpec>,
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        super::super::names::NODE_RESOURCES_BALANCED_ALLOCATION
    }

    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        _: &Snapshot<'_>,
    ) -> Status {
        if self
            .resources
            .iter()
            .all(|r| pod.requests.get(&r.name) == 0)
        {
            Status::skip()
        } else {
            Status::success()
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        let fractions: Vec<f64> = self
            .resources
            .iter()
            .filter_map(|r| {
                let capacity = node.allocatable.get(&r.name);
                (capacity > 0).then(|| {
                    let requested = node.requested.get(&r.name) + pod.requests.get(&r.name);
                    (requested as f64 / capacity as f64).min(1.0)
                })
            })
            .collect();
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => (fractions[0] - fractions[1]).abs() / 2.0,
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}
