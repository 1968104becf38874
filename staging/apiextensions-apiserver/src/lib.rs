//! CustomResourceDefinitions served by the kube-apiserver (upstream
//! `k8s.io/apiextensions-apiserver`, which upstream also runs in the same process):
//! structural schemas, the custom resource strategy and the controller that installs a
//! CRD's versions as served resources and cleans up after its deletion.

pub mod controller;
pub mod conversion;
pub mod jsonpath;
pub mod registry;
pub mod schema;
