//! Volume plugins that reach outside the kubelet (upstream `pkg/volume`): CSI, and volume usage.

pub mod csi;
pub mod stats;
