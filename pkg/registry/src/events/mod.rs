//! The `events.k8s.io/v1` group: served from the core events' storage.

pub mod event;
