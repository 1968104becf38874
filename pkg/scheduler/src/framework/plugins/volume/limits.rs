//! NodeVolumeLimits (upstream `nodevolumelimits`, CSI): a node takes no more volumes of
//! a CSI driver than its CSINode's `allocatable.count` for that driver, counting each
//! volume once however many pods share it.

use super::{claim, claim_names};
use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot, Status, Volumes,
};
use std::collections::{HashMap, HashSet};

pub const ERR_REASON: &str = "node(s) exceed max volume count";

const KEY: &str = "PreFilterNodeVolumeLimits";

pub struct NodeVolumeLimits;

/// The pod's CSI volumes as (driver, unique handle): bound volumes by their handle,
/// claims still to be provisioned by their claim.
fn csi_volumes(pod: &PodInfo, vols: &Volumes) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for name in claim_names(pod) {
        match claim(vols, pod.namespace(), &name) {
            Some((_, Some(pv))) => {
                if let Some(csi) = pv.spec.as_ref().and_then(|s| s.csi.as_ref()) {
                    out.insert((csi.driver.clone(), csi.volume_handle.clone()));
                }
            }
            Some((c, None)) => {
                let class = c
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.as_deref())
                    .unwrap_or_default();
                if let Some(sc) = vols.classes.get(class) {
                    out.insert((
                        sc.provisioner.clone(),
                        format!("{}/{name}", pod.namespace()),
                    ));
                }
            }
            None => {}
        }
    }
    out
}

struct Counted {
    new: HashSet<(String, String)>,
    /// node -> driver -> limit.
    limits: HashMap<String, HashMap<String, i64>>,
    /// node -> volumes already there.
    existing: HashMap<String, HashSet<(String, String)>>,
}

impl Plugin for NodeVolumeLimits {
    fn name(&self) -> &'static str {
        super::super::names::NODE_VOLUME_LIMITS
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let new = csi_volumes(pod, snapshot.volumes);
        if new.is_empty() {
            return (None, Status::skip());
        }
        let drivers: HashSet<&String> = new.iter().map(|(d, _)| d).collect();
        let mut limits = HashMap::new();
        let mut existing = HashMap::new();
        for node in snapshot.nodes {
            let Some(csi) = snapshot.volumes.csi_nodes.get(&node.name) else {
                continue;
            };
            let per_driver: HashMap<String, i64> = csi
                .spec
                .drivers
                .iter()
                .filter(|d| drivers.contains(&d.name))
                .filter_map(|d| Some((d.name.clone(), i64::from(d.allocatable.as_ref()?.count?))))
                .collect();
            if per_driver.is_empty() {
                continue;
            }
            let there: HashSet<(String, String)> = node
                .pods
                .iter()
                .flat_map(|p| csi_volumes(p, snapshot.volumes))
                .collect();
            limits.insert(node.name.clone(), per_driver);
            existing.insert(node.name.clone(), there);
        }
        state.write(
            KEY,
            Counted {
                new,
                limits,
                existing,
            },
        );
        (None, Status::success())
    }

    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<Counted>(KEY) else {
            return Status::success();
        };
        let Some(limits) = st.limits.get(&node.name) else {
            return Status::success();
        };
        let empty = HashSet::new();
        let there = st.existing.get(&node.name).unwrap_or(&empty);
        for (driver, limit) in limits {
            let attached = there.iter().filter(|(d, _)| d == driver).count() as i64;
            let adding = st
                .new
                .iter()
                .filter(|v| &v.0 == driver && !there.contains(*v))
                .count() as i64;
            if adding > 0 && attached + adding > *limit {
                return Status::unschedulable(ERR_REASON);
            }
        }
        Status::success()
    }
}
