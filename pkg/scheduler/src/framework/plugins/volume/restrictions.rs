//! VolumeRestrictions (upstream `volumerestrictions`): a ReadWriteOncePod claim already
//! used by another pod cannot be used again, and the same in-tree disk (GCE PD, AWS EBS,
//! RBD, iSCSI) cannot be mounted twice on one node.

use super::{claim, claim_names};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot, Status};
use k8s_openapi::api::core::v1::Volume;

pub const ERR_DISK_CONFLICT: &str = "node(s) had no available disk";
pub const ERR_RWOP_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

pub struct VolumeRestrictions;

/// Two in-tree volumes naming the same disk (read-only sharing allowed where upstream
/// allows it).
fn conflicts(a: &Volume, b: &Volume) -> bool {
    if let (Some(x), Some(y)) = (&a.gce_persistent_disk, &b.gce_persistent_disk) {
        return x.pd_name == y.pd_name
            && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    if let (Some(x), Some(y)) = (&a.aws_elastic_block_store, &b.aws_elastic_block_store) {
        return x.volume_id == y.volume_id;
    }
    if let (Some(x), Some(y)) = (&a.iscsi, &b.iscsi) {
        return x.iqn == y.iqn && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    if let (Some(x), Some(y)) = (&a.rbd, &b.rbd) {
        return x.image == y.image
            && x.pool == y.pool
            && x.monitors.iter().any(|m| y.monitors.contains(m))
            && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    false
}

fn volumes(p: &PodInfo) -> &[Volume] {
    p.pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        super::super::names::VOLUME_RESTRICTIONS
    }

    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let rwop: Vec<String> = claim_names(pod)
            .into_iter()
            .filter(|n| {
                claim(snapshot.volumes, pod.namespace(), n).is_some_and(|(c, _)| {
                    c.spec
                        .as_ref()
                        .and_then(|s| s.access_modes.as_ref())
                        .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"))
                })
            })
            .collect();
        if rwop.is_empty() {
            return (
                None,
                if volumes(pod).is_empty() {
                    Status::skip()
                } else {
                    Status::success()
                },
            );
        }
        let used = snapshot.nodes.iter().flat_map(|n| &n.pods).any(|p| {
            p.uid != pod.uid
                && p.namespace() == pod.namespace()
                && claim_names(p).iter().any(|c| rwop.contains(c))
        });
        if used {
            return (None, Status::unresolvable(ERR_RWOP_CONFLICT));
        }
        (None, Status::success())
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mine = volumes(pod);
        let clash = node.pods.iter().any(|p| {
            volumes(p)
                .iter()
                .any(|theirs| mine.iter().any(|v| conflicts(v, theirs)))
        });
        if clash {
            Status::unschedulable(ERR_DISK_CONFLICT)
        } else {
            Status::success()
        }
    }
}
