//! Token authenticators (upstream `plugin/pkg/auth/authenticator/token`).

pub mod bootstrap;
