//! `/healthz`, `/livez`, `/readyz` (upstream `apiserver/pkg/server/healthz`): named checks,
//! `?verbose`, `?exclude=<check>`, and `/<endpoint>/<check>` for a single check.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

#[async_trait]
pub trait Check: Send + Sync {
    fn name(&self) -> &str;
    async fn check(&self) -> Result<(), String>;
}

/// A check that always passes (upstream's `ping`).
pub struct Ping;

#[async_trait]
impl Check for Ping {
    fn name(&self) -> &str {
        "ping"
    }
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A check backed by a flag that flips once (e.g. a post-start hook finished).
pub struct Flag {
    pub name: String,
    pub done: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Check for Flag {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        if self.done.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not finished".into())
        }
    }
}

#[derive(Default, Clone)]
pub struct Health {
    pub livez: Vec<Arc<dyn Check>>,
    pub readyz: Vec<Arc<dyn Check>>,
}

impl Health {
    /// Runs the checks of an endpoint; returns (HTTP code, body).
    pub async fn serve(
        &self,
        endpoint: &str,
        single: Option<&str>,
        query: &HashMap<String, String>,
    ) -> (u16, String) {
        let checks = if endpoint == "readyz" {
            &self.readyz
        } else {
            &self.livez
        };
        let excluded: Vec<&str> = query
            .get("exclude")
            .map(|e| e.split(',').collect())
            .unwrap_or_default();
        if let Some(name) = single {
            let Some(c) = checks.iter().find(|c| c.name() == name) else {
                return (404, "404 page not found\n".into());
            };
            return match c.check().await {
                Ok(()) => (200, "ok".into()),
                Err(e) => (500, format!("internal server error: {e}\n")),
            };
        }
        let verbose = query.contains_key("verbose");
        let mut body = String::new();
        let mut failed = false;
        for c in checks {
            if excluded.contains(&c.name()) {
                body.push_str(&format!("[+]{} excluded: ok\n", c.name()));
                continue;
            }
            match c.check().await {
                Ok(()) => body.push_str(&format!("[+]{} ok\n", c.name())),
                Err(e) => {
                    failed = true;
                    tracing::warn!(check = c.name(), endpoint, error = %e, "health check failed");
                    body.push_str(&format!("[-]{} failed: reason withheld\n", c.name()));
                }
            }
        }
        if failed {
            body.push_str(&format!("{endpoint} check failed\n"));
            return (500, body);
        }
        if verbose {
            body.push_str(&format!("{endpoint} check passed\n"));
            (200, body)
        } else {
            (200, "ok".into())
        }
    }
}
