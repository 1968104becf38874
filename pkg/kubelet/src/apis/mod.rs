pub mod config;
pub mod unsupported;
