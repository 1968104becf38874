//! Test support shared by the workspace's unit tests.
//!
//! [`apiserver::TestServer`] runs our kube-apiserver in-process on the embedded store, as
//! upstream's `StartTestServer` (cmd/kube-apiserver/app/testing) does, so that controllers
//! and informers are tested against the real API (validation, defaulting, admission,
//! watches) in well under a second each, without spawning binaries.

pub mod apiserver;
