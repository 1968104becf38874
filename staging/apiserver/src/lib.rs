pub mod admission;
pub mod endpoints;
pub mod registry;
pub mod server;
pub mod storage;
