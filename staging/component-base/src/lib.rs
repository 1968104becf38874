//! Shared component plumbing (upstream `k8s.io/component-base`).

pub mod grpc;
pub mod logs;
pub mod metrics;
pub mod serving;
pub mod signals;
pub mod tls;

/// Ends a component whose run failed: the error logged and on stderr, exit status 1.
pub fn exit_on_error(component: &str, result: Result<(), String>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{component} failed");
        eprintln!("E: {e}");
        std::process::exit(1);
    }
}
