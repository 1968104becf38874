pub mod admission;
pub mod audit;
pub mod authentication;
pub mod authorization;
pub mod endpoints;
pub mod proxy;
pub use quota;
pub mod registry;
pub mod server;
/// The storage layer, its own crate (`staging/apiserver-storage`).
pub use apiserver_storage as storage;
pub mod util;
