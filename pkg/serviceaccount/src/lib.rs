//! Service accounts' identities and tokens (upstream `pkg/serviceaccount`): the user a
//! token stands for, and the signed JWTs themselves (`jwt`). The apiserver's
//! authenticator and TokenRequest, and the controller-manager's token controller, share
//! them; neither needs the other's code.

pub mod jwt;

/// The issuer of legacy (Secret-held) service account tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// `system:serviceaccount:<namespace>:<name>`.
pub fn username(ns: &str, name: &str) -> String {
    format!("system:serviceaccount:{ns}:{name}")
}

/// The groups of a service account's user.
pub fn groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
    ]
}
