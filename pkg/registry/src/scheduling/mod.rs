//! The `scheduling.k8s.io/v1` group.

pub mod priorityclass;
