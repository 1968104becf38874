//! The `admissionregistration.k8s.io/v1` group: webhook configurations and validating
//! admission policies (stored and validated here; invoking them is the admission chain's).

pub mod policy;
pub mod webhook;
