pub mod admit;
pub mod discovery;
pub mod fieldmanager;
pub mod handlers;
pub mod metrics;
pub mod negotiation;
pub mod openapi;
pub mod openapi_pb;
pub mod patch;
pub mod request;
pub mod shape;
pub mod table;
pub mod view;
pub mod watch;

pub use handlers::{ApiResource, ApiServer, ConnectHandler, SubresourceHandler, VirtualRest};
