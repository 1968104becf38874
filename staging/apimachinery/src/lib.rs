//! Shared API machinery (upstream `k8s.io/apimachinery`): the `metav1.Status` error model,
//! label and field selectors, name validation and group/version/resource identities.

pub mod cron;
pub mod duration;
pub mod errors;
pub mod fields;
pub mod fuzz;
pub mod httpstream;
pub mod labels;
pub mod protobuf;
pub mod resource;
pub mod schema;
pub mod strict;
pub mod validation;

pub use errors::{Cause, StatusError};
pub use schema::{GroupResource, GroupVersionKind};
