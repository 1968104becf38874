pub mod admission;
pub mod authentication;
pub mod authorization;
pub mod endpoints;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod storage;
