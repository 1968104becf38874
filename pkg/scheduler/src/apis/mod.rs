//! The scheduler's configuration file (upstream `pkg/scheduler/apis/config`).

pub mod config;
