//! The kubelet (upstream `pkg/kubelet`).

pub mod admission;
pub mod apis;
pub mod certificate;
pub mod config;
pub mod credentialprovider;
pub mod cri;
pub mod eviction;
pub mod health;
pub mod images;
pub mod kubelet;
pub mod kuberuntime;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod nodestatus;
pub mod pleg;
pub mod prober;
pub mod resize;
pub mod run;
pub mod server;
pub mod stats;
pub mod status;
pub mod sync;
pub mod sysctl;
pub mod volume_ownership;
pub mod volumemanager;
