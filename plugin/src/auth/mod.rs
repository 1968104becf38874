//! Authentication and authorization plugins (upstream `plugin/pkg/auth`).

pub mod authenticator;
pub mod authorizer;
