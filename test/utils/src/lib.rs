//! Test support shared by the workspace's unit tests.
//!
//! [`apiserver::TestServer`] runs our kube-apiserver in-process on the embedded store, as
//! upstream's `StartTestServer` (cmd/kube-apiserver/app/testing) does, so that controllers
//! and informers are tested against the real API (validation, defaulting, admission,
//! watches) in well under a second each, without spawning binaries.

pub mod apiserver;

use std::time::{Duration, Instant};

/// Polls `f` until it returns Some, failing the test after `timeout`.
pub async fn wait<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
