//! Shared component plumbing (upstream `k8s.io/component-base`).

pub mod authentication;
pub mod body;
pub mod grpc;
pub mod logs;
pub mod metrics;
pub mod proxy;
pub mod serving;
pub mod signals;
pub mod tls;
pub mod x509_verify;

/// This machine's host name, lower-cased (upstream's `nodeutil.GetHostname` without an
/// override); empty when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// This machine's architecture as Go names it (`GOARCH`: amd64, arm64), as node labels,
/// nodeInfo and version platforms spell it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Ends a component whose run failed: the error logged and on stderr, exit status 1.
pub fn exit_on_error(component: &str, result: Result<(), String>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{component} failed");
        eprintln!("E: {e}");
        std::process::exit(1);
    }
}
