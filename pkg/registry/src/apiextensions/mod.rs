//! The `apiextensions.k8s.io/v1` group.

pub mod customresourcedefinition;
