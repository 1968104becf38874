//! Authorizers (upstream `plugin/pkg/auth/authorizer`): RBAC, the Node authorizer, and
//! RBAC's escalation check on role writes.

pub mod escalation;
pub mod node;
pub mod rbac;
