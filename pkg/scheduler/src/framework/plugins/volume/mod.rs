//! The volume plugins (upstream `volumebinding`, `volumezone`, `volumerestrictions`,
//! `nodevolumelimits`) and what they share: the claims a pod uses.

pub mod binding;
pub mod limits;
pub mod prebind;
pub mod restrictions;
pub mod zone;

use crate::framework::{PodInfo, Volumes};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use std::sync::Arc;

/// The claim names a pod uses: `persistentVolumeClaim` volumes and the claims generic
/// ephemeral volumes get (`<pod>-<volume>`).
pub fn claim_names(pod: &PodInfo) -> Vec<String> {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{}-{}", pod.name(), v.name))
            }
        })
        .collect()
}

/// The claim and, when bound, its volume.
pub fn claim<'a>(
    vols: &'a Volumes,
    ns: &str,
    name: &str,
) -> Option<(
    &'a Arc<PersistentVolumeClaim>,
    Option<&'a Arc<PersistentVolume>>,
)> {
    let c = vols.claims.get(&format!("{ns}/{name}"))?;
    let pv = c
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
        .and_then(|n| vols.volumes.get(n));
    Some((c, pv))
}
