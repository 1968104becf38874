//! Shared component plumbing (upstream `k8s.io/component-base`).

pub mod logs;
pub mod metrics;
pub mod serving;
pub mod signals;
pub mod tls;
