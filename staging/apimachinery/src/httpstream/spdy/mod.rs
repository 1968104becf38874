//! SPDY/3.1 as Kubernetes streams it (upstream `apimachinery/pkg/util/httpstream/spdy`):
//! the upgrade is `Connection: Upgrade`, `Upgrade: SPDY/3.1`, and what follows is SPDY
//! framing with one stream per channel (stdin, stdout, error, a forwarded port…).

pub mod conn;
mod dictionary;
pub mod frame;

pub use conn::{Connection, Stream, StreamWriter};
pub use frame::Headers;

/// The value of the `Upgrade` header.
pub const UPGRADE_PROTOCOL: &str = "SPDY/3.1";
