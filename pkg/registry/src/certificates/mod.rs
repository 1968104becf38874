//! The `certificates.k8s.io/v1` group.

pub mod certificatesigningrequest;
