//! What command-line clients share (upstream `k8s.io/cli-runtime`): the kubeconfig
//! flags and the client they build, cached discovery and the REST mapper, the
//! resource builder that turns arguments and files into objects, and the printers.

pub mod client;
pub mod config_flags;
pub mod discovery;
pub mod klog;
pub mod kustomize;
pub mod openapi;
pub mod portforward;
pub mod printers;
pub mod remotecommand;
pub mod resource;
pub mod upgrade;

/// The Kubernetes release this kubectl speaks (`kubectl version`, the `User-Agent`).
pub const KUBECTL_VERSION: &str = "v1.35.0";
