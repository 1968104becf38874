//! How a container's volume mount reaches the runtime (upstream
//! `pkg/kubelet/kubelet_pods.go` `translateMountPropagation` and the recursive read-only
//! handling of `makeMounts`): mount propagation as the CRI's enum (Bidirectional is for
//! privileged containers only, which validation enforces), and recursive read-only
//! mounts.

use crate::cri::api::MountPropagation;
use k8s_openapi::api::core::v1::VolumeMount;

/// The CRI propagation of a `mountPropagation` (none: private).
pub fn propagation(mode: Option<&str>) -> MountPropagation {
    match mode {
        Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
        Some("Bidirectional") => MountPropagation::PropagationBidirectional,
        _ => MountPropagation::PropagationPrivate,
    }
}

/// Whether the mount is made read-only recursively: `recursiveReadOnly: Enabled` (the
/// runtime refuses it when it cannot), not `IfPossible`, which falls back to a plain
/// read-only mount as upstream does on runtimes without the feature.
pub fn recursive_read_only(vm: &VolumeMount) -> bool {
    vm.read_only == Some(true) && vm.recursive_read_only.as_deref() == Some("Enabled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_maps_to_the_cri() {
        assert_eq!(propagation(None), MountPropagation::PropagationPrivate);
        assert_eq!(
            propagation(Some("None")),
            MountPropagation::PropagationPrivate
        );
        assert_eq!(
            propagation(Some("HostToContainer")),
            MountPropagation::PropagationHostToContainer
        );
        assert_eq!(
            propagation(Some("Bidirectional")),
            MountPropagation::PropagationBidirectional
        );
        let mut vm = VolumeMount {
            read_only: Some(true),
            recursive_read_only: Some("Enabled".into()),
            ..Default::default()
        };
        assert!(recursive_read_only(&vm));
        vm.recursive_read_only = Some("IfPossible".into());
        assert!(!recursive_read_only(&vm));
    }
}
