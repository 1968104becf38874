//! Front-proxy authentication (upstream `authentication/request/headerrequest`), shared
//! with the components' secure ports: see `component_base::authentication`.

pub use component_base::authentication::RequestHeader;
