//! The `rbac.authorization.k8s.io/v1` group (stored and validated here; enforced by the
//! authorizer).

pub mod binding;
pub mod bootstrappolicy;
pub mod component_roles;
pub mod controller_roles;
pub mod role;
#[cfg(test)]
mod upstream_policy_test;
