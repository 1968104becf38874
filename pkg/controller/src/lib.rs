//! The kube-controller-manager's controllers (upstream `pkg/controller`): shared
//! informers, rate-limited work queues, and the controllers themselves.

pub mod bootstrap;
pub mod certificates;
pub mod clusterroleaggregation;
pub mod controller_ref_manager;
pub mod controller_utils;
pub mod cronjob;
pub mod daemon;
pub mod deployment;
pub mod disruption;
pub mod endpoint;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod history;
pub use client_go::informer;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod statefulset;
#[cfg(test)]
mod testing;
pub mod ttl;
pub mod ttlafterfinished;
pub mod volume;
pub use client_go::reconciler;
pub use client_go::workqueue;
