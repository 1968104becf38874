//! TaintToleration (upstream `tainttoleration`): NoSchedule/NoExecute taints must be
//! tolerated; PreferNoSchedule taints that are not lower the score.

use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, Plugin, PodInfo, Snapshot, Status,
    default_normalize_score,
};
use k8s_openapi::api::core::v1::{Taint, Toleration};

pub const ERR_REASON: &str = "node(s) had untolerated taint(s)";

pub struct TaintToleration;

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        super::names::TAINT_TOLERATION
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tols = tolerations(pod);
        let untolerated = taints(node).iter().any(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tols.iter().any(|t| tolerates(t, taint))
        });
        // Since v1.34 the message no longer names the taint.
        if untolerated {
            Status::unresolvable(ERR_REASON)
        } else {
            Status::success()
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        // Only tolerations that may apply to PreferNoSchedule count.
        let tols: Vec<&Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .collect();
        taints(node)
            .iter()
            .filter(|taint| {
                taint.effect == "PreferNoSchedule" && !tols.iter().any(|t| tolerates(t, taint))
            })
            .count() as i64
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
    }
}
