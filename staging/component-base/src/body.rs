//! The response body every HTTP server here uses: bytes, boxed, with I/O errors (shared
//! by the apiserver's handlers, its proxy and the kubelet's server).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of `b`, whole.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
