//! The Container Storage Interface (`csi.v1`) as gRPC stubs: what the kubelet's CSI
//! volume plugin, the attach/detach and expansion paths and our own CSI driver speak over
//! the driver's unix socket. Generated from the CSI spec's `csi.proto` at **v1.12.0**
//! (`proto/csi.proto`, unchanged); no maintained crate has these for tonic 0.14.
//! Upstream twin: `github.com/container-storage-interface/spec/lib/go/csi`.

#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unused_qualifications,
    rustdoc::all
)]
pub mod v1 {
    tonic::include_proto!("csi.v1");
}

/// The kubelet's plugin registration API (`pluginregistration`, upstream
/// `k8s.io/kubelet/pkg/apis/pluginregistration/v1`): how a CSI driver's node part tells
/// the kubelet its socket, through `/var/lib/kubelet/plugins_registry`.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unused_qualifications,
    rustdoc::all
)]
pub mod pluginregistration {
    tonic::include_proto!("pluginregistration");
}

/// The plugin type a CSI driver registers as.
pub const CSI_PLUGIN_TYPE: &str = "CSIPlugin";

/// The spec version these stubs were generated from.
pub const SPEC_VERSION: &str = "1.12.0";

pub mod mount;
pub mod names;
