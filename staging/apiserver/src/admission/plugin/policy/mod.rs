//! Admission policies written in CEL (upstream `apiserver/pkg/admission/plugin/policy`).

pub mod cel;
pub mod validating;
