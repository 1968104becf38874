//! VolumeZone (upstream `volumezone`): a pod's bound volumes labelled with a zone or
//! region (values may be `__`-separated sets) only go to nodes in it.

use super::{claim, claim_names};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot, Status};

pub const ERR_REASON: &str = "node(s) had no available volume zone";

const TOPOLOGY_LABELS: [&str; 4] = [
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];

const KEY: &str = "PreFilterVolumeZone";

pub struct VolumeZone;

/// (label, allowed values) the node must satisfy.
struct Wanted(Vec<(String, Vec<String>)>);

impl Plugin for VolumeZone {
    fn name(&self) -> &'static str {
        super::super::names::VOLUME_ZONE
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let mut wanted = Vec::new();
        for name in claim_names(pod) {
            let Some((_, Some(pv))) = claim(snapshot.volumes, pod.namespace(), &name) else {
                continue;
            };
            for label in TOPOLOGY_LABELS {
                if let Some(v) = pv.metadata.labels.as_ref().and_then(|l| l.get(label)) {
                    wanted.push((label.to_string(), v.split("__").map(String::from).collect()));
                }
            }
        }
        if wanted.is_empty() {
            return (None, Status::skip());
        }
        state.write(KEY, Wanted(wanted));
        (None, Status::success())
    }

    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(Wanted(wanted)) = state.read::<Wanted>(KEY) else {
            return Status::success();
        };
        let labels = node.labels();
        for (label, values) in wanted {
            // Nodes without the label are not constrained by it (as upstream).
            if let Some(v) = labels.get(label)
                && !values.contains(v)
            {
                return Status::unresolvable(ERR_REASON);
            }
        }
        Status::success()
    }
}
