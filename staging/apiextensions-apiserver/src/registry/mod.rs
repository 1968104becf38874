pub mod customresource;
pub mod version;
