//! NodeName (upstream `nodename`): a pod naming a node fits only there.

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        super::names::NODE_NAME
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(want) if !want.is_empty() && want != node.name => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
        }
    }
}
