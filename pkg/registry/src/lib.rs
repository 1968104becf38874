//! The built-in resources' strategies (upstream `pkg/registry/<group>/<resource>`).

pub mod apps;
pub mod coordination;
pub mod core;
pub mod typed;
