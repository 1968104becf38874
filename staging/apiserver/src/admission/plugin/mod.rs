//! Admission plugins generic to any apiserver (upstream `apiserver/pkg/admission/plugin`).

pub mod webhook;
