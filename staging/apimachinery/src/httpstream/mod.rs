//! Streaming over upgraded HTTP connections (upstream `apimachinery/pkg/util/httpstream`):
//! SPDY/3.1 and WebSocket, and the sub-protocols exec, attach and port-forward speak on
//! them.

pub mod spdy;
pub mod wsstream;

/// The request header listing the sub-protocols a SPDY client offers (one value each),
/// and the response header naming the one chosen.
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";

/// remotecommand's sub-protocols (upstream `apimachinery/pkg/util/remotecommand`).
pub const STREAM_PROTOCOL_V5: &str = "v5.channel.k8s.io";
pub const STREAM_PROTOCOL_V4: &str = "v4.channel.k8s.io";
pub const STREAM_PROTOCOL_V3: &str = "v3.channel.k8s.io";
pub const STREAM_PROTOCOL_V2: &str = "v2.channel.k8s.io";
pub const STREAM_PROTOCOL_V1: &str = "channel.k8s.io";
/// Port-forward's sub-protocol over SPDY, and over a WebSocket tunnel.
pub const PORT_FORWARD_PROTOCOL_V1: &str = "portforward.k8s.io";
pub const PORT_FORWARD_TUNNELING_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// The stream header naming a stream's role, and its values.
pub const STREAM_TYPE: &str = "streamType";
pub const STREAM_TYPE_STDIN: &str = "stdin";
pub const STREAM_TYPE_STDOUT: &str = "stdout";
pub const STREAM_TYPE_STDERR: &str = "stderr";
pub const STREAM_TYPE_ERROR: &str = "error";
pub const STREAM_TYPE_RESIZE: &str = "resize";
pub const STREAM_TYPE_DATA: &str = "data";
/// Port-forward's stream headers.
pub const PORT_HEADER: &str = "port";
pub const PORT_FORWARD_REQUEST_ID_HEADER: &str = "requestID";
