//! The `batch/v1` group.

pub mod cronjob;
pub mod job;
