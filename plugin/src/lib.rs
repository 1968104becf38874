//! The kube-apiserver's admission plugins (upstream `plugin/pkg/admission`). Each reads
//! the objects it needs from the apiserver's own registries, never from another process.

pub mod admission;
