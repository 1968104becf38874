//! NodeUnschedulable (upstream `nodeunschedulable`): cordoned nodes take only pods that
//! tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use super::tainttoleration::tolerates;
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};
use k8s_openapi::api::core::v1::Taint;

pub const ERR_REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        super::names::NODE_UNSCHEDULABLE
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let cordoned = node
            .node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerations = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        if tolerations.iter().any(|t| tolerates(t, &taint)) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}
