//! NodePorts (upstream `nodeports`): a pod's host ports must be free on the node.

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        super::names::NODE_PORTS
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if clash {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}
