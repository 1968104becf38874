//! Volume controllers (upstream `pkg/controller/volume`): the PersistentVolume binder
//! the PVC / PV protection controllers, the expansion controller and the
//! attach/detach controller.

pub mod attachdetach;
pub mod ephemeral;
pub mod expand;
pub mod persistentvolume;
pub mod pvcprotection;
pub mod pvprotection;

use k8s_openapi::api::core::v1::Pod;

/// Whether an unfinished pod mounts the claim (directly or as its generic ephemeral
/// volume, which is named `<pod>-<volume>`).
pub fn pod_uses_claim(p: &Pod, claim: &str) -> bool {
    if matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let pod = p.metadata.name.as_deref().unwrap_or_default();
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
                || (v.ephemeral.is_some() && format!("{pod}-{}", v.name) == claim)
        })
}
