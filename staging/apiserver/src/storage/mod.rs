pub mod cacher;
pub mod embedded;
pub mod etcd3;
pub mod interface;
pub mod store;
pub mod transforming;
pub mod value;
