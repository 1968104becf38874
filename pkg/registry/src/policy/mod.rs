//! The `policy/v1` group.

pub mod poddisruptionbudget;
