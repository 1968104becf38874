//! The `apps/v1` group.

pub mod deployment;
pub mod replicaset;
pub mod scale;
