//! The CRI-backed container runtime manager (upstream `pkg/kubelet/kuberuntime`).

pub mod container;
pub mod env;
pub mod etc_hosts;
pub mod mounts;
pub mod pod_actions;
pub mod sandbox;
pub mod security_context;
pub mod subpath;
pub mod termination;
