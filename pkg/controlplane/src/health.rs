//! The apiserver's health checks.

use apiserver::server::healthz::Check;
use apiserver::storage::interface::Backend;
use async_trait::async_trait;
use std::sync::Arc;

/// Storage answers (upstream names it `etcd` whatever the backend).
pub struct StorageCheck {
    pub backend: Arc<dyn Backend>,
    pub name: String,
}

#[async_trait]
impl Check for StorageCheck {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.backend.current_revision(),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("storage did not answer within 2s".into()),
        }
    }
}

/// Logging works (upstream's `log` check).
pub struct LogCheck;

#[async_trait]
impl Check for LogCheck {
    fn name(&self) -> &str {
        "log"
    }
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
