//! NodeResourcesFit (upstream `noderesources/fit.go`): the pod's requests must fit the
//! node's allocatable next to what is already requested there; the score follows the
//! scoring strategy (LeastAllocated by default, MostAllocated, RequestedToCapacityRatio).

use super::ResourceSpec;
use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, Snapshot, Status};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// Utilization (0..100) -> score (0..10) points, linearly interpolated.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

pub struct Fit {
    pub strategy: Strategy,
    pub resources: Vec<ResourceSpec>,
    /// `ignoredResources`: extended resources not checked.
    pub ignored: Vec<String>,
}

/// Upstream's reasons, one per resource that does not fit.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo, ignored: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
        out.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if req.is_zero() {
        return out;
    }
    let (alloc, used) = (&node.allocatable, &node.requested);
    if req.milli_cpu > 0 && alloc.milli_cpu < req.milli_cpu + used.milli_cpu {
        out.push("Insufficient cpu".into());
    }
    if req.memory > 0 && alloc.memory < req.memory + used.memory {
        out.push("Insufficient memory".into());
    }
    if req.ephemeral_storage > 0
        && alloc.ephemeral_storage < req.ephemeral_storage + used.ephemeral_storage
    {
        out.push("Insufficient ephemeral-storage".into());
    }
    for (name, want) in &req.scalar {
        if *want == 0 || ignored.contains(name) {
            continue;
        }
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        if have < want + taken {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

fn least_allocated(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

fn most_allocated(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// The broken-linear shape of RequestedToCapacityRatio, points scaled to 0..100.
fn shape_score(points: &[(i64, i64)], utilization: i64) -> i64 {
    let scaled: Vec<(i64, i64)> = points
        .iter()
        .map(|(u, s)| (*u, s * MAX_NODE_SCORE / 10))
        .collect();
    let Some(first) = scaled.first() else {
        return 0;
    };
    if utilization <= first.0 {
        return first.1;
    }
    for w in scaled.windows(2) {
        let ((u0, s0), (u1, s1)) = (w[0], w[1]);
        if utilization <= u1 {
            return s0 + (s1 - s0) * (utilization - u0) / (u1 - u0).max(1);
        }
    }
    scaled.last().unwrap().1
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        super::super::names::NODE_RESOURCES_FIT
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(pod, node, &self.ignored);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
                plugin: "",
            }
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for r in &self.resources {
            let capacity = node.allocatable.get(&r.name);
            let requested =
                node.non_zero_requested.get(&r.name) + pod.non_zero_requests.get(&r.name);
            if capacity == 0 {
                continue;
            }
            let s = match &self.strategy {
                Strategy::LeastAllocated => least_allocated(requested, capacity),
                Strategy::MostAllocated => most_allocated(requested, capacity),
                Strategy::RequestedToCapacityRatio(points) => {
                    shape_score(points, requested.min(capacity) * 100 / capacity)
                }
            };
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

impl Fit {
    /// NodeResourcesFitArgs: `scoringStrategy` {type, resources, requestedToCapacityRatio}
    /// and `ignoredResources`.
    pub fn from_args(args: Option<&serde_json::Value>) -> Result<Fit, String> {
        let strategy = args.map(|a| &a["scoringStrategy"]);
        let resources: Vec<ResourceSpec> = match strategy.and_then(|s| s.get("resources")) {
            Some(r) => serde_json::from_value(r.clone())
                .map_err(|e| format!("NodeResourcesFit args: {e}"))?,
            None => super::default_resources(),
        };
        let kind = strategy
            .and_then(|s| s["type"].as_str())
            .unwrap_or("LeastAllocated");
        let strategy = match kind {
            "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = strategy
                    .and_then(|s| s["requestedToCapacityRatio"]["shape"].as_array())
                    .ok_or("NodeResourcesFit args: scoringStrategy.requestedToCapacityRatio.shape: Required value")?;
                Strategy::RequestedToCapacityRatio(
                    shape
                        .iter()
                        .map(|p| {
                            (
                                p["utilization"].as_i64().unwrap_or(0),
                                p["score"].as_i64().unwrap_or(0),
                            )
                        })
                        .collect(),
                )
            }
            other => {
                return Err(format!(
                    "NodeResourcesFit args: scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
                ));
            }
        };
        let ignored = args
            .and_then(|a| a["ignoredResources"].as_array())
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Fit {
            strategy,
            resources,
            ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_strategies() {
        assert_eq!(least_allocated(2500, 10000), 75);
        assert_eq!(least_allocated(20000, 10000), 0);
        assert_eq!(most_allocated(2500, 10000), 25);
        let shape = [(0, 10), (100, 0)];
        assert_eq!(shape_score(&shape, 30), 70);
        assert_eq!(shape_score(&shape, 100), 0);
    }
}
