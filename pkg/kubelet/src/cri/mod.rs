//! The CRI client (upstream `pkg/kubelet/cri/remote`): `runtime.v1` RuntimeService and
//! ImageService over the runtime's unix socket, with upstream's label and annotation
//! keys that tie sandboxes and containers back to pods.

pub mod fake;
pub mod remote;

pub use k8s_cri::v1 as api;

/// Labels the kubelet sets on sandboxes and containers (upstream `pkg/kubelet/types/labels.go`).
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotations the kubelet keeps on containers (upstream `kuberuntime/labels.go`).
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
