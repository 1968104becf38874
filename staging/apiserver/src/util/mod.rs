//! Helpers shared by the apiserver's parts (upstream `apiserver/pkg/util`).

pub mod flowcontrol;
pub mod proxy;
pub mod webhook;
