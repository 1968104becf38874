//! Certificate controllers (upstream `pkg/controller/certificates`).

pub mod rootcacertpublisher;
