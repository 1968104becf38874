//! What the components share to talk to an apiserver (upstream `k8s.io/client-go`): a
//! client from a kubeconfig with upstream's QPS/burst client-side rate limit, the events
//! recorder (`events.k8s.io/v1`), and Lease-based leader election.

pub mod bootstrap_jws;
pub mod cert_reload;
pub mod clientbuilder;
pub mod delegated;
pub mod events;
pub mod flowcontrol;
pub mod informer;
pub mod informer_factory;
pub mod leaderelection;
pub mod reconciler;
pub mod rest;
pub mod secure;
pub mod workqueue;
pub mod workqueue_metrics;
