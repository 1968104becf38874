//! The `apiregistration.k8s.io/v1` group (upstream `kube-aggregator/pkg/registry`):
//! APIServices, which say which server serves each API group version.

pub mod apiservice;
