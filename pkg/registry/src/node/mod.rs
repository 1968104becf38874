//! The `node.k8s.io/v1` group.

pub mod runtimeclass;
