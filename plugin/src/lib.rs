//! The kube-apiserver's plugins (upstream `plugin/pkg`): admission plugins, which read
//! the objects they need from the apiserver's own registries, never from another
//! process; and the RBAC and Node authorizers and the bootstrap-token authenticator.

pub mod admission;
pub mod auth;
