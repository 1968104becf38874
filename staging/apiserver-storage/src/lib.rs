//! The apiserver's storage (upstream `k8s.io/apiserver/pkg/storage`): the KV contract
//! (`interface`), its two backends (`etcd3`, `embedded`), the encrypting transformer
//! (`transforming`, `value`), the typed-object store over them (`store`) and the watch
//! cache (`cacher`). Only the apiserver side depends on this crate, so nothing else links
//! etcd-client or redb.

pub mod cacher;
pub mod embedded;
pub mod etcd3;
pub mod interface;
pub mod metrics;
pub mod store;
pub mod transforming;
pub mod value;
