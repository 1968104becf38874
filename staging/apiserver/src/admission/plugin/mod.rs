//! Admission plugins generic to any apiserver (upstream `apiserver/pkg/admission/plugin`).

pub mod matching;
pub mod policy;
pub mod webhook;
