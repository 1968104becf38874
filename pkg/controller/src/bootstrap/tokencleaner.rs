//! The token cleaner (upstream `bootstrap/tokencleaner.go`): bootstrap token Secrets in
//! `kube-system` are deleted once their `expiration` passes.

use super::{SECRET_TYPE, expired, field};
use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Preconditions};
use std::sync::Arc;
use std::time::Duration;

pub struct TokenCleaner {
    client: kube::Client,
    secrets: Arc<Informer<Secret>>,
    queue: Arc<Queue>,
}

impl TokenCleaner {
    /// `secrets` watches `kube-system`.
    pub fn new(client: kube::Client, secrets: Arc<Informer<Secret>>) -> Arc<Self> {
        let queue = Queue::named("token_cleaner");
        let q = queue.clone();
        secrets.add_handler(move |s, deleted| {
            if !deleted && s.type_.as_deref() == Some(SECRET_TYPE) {
                q.add(key(s));
            }
        });
        Arc::new(TokenCleaner {
            client,
            secrets,
            queue,
        })
    }

    /// Some(wait) until the token expires.
    async fn sync(&self, k: &str) -> Option<Duration> {
        let s = self.secrets.store.get(k)?;
        let now = jiff::Timestamp::now();
        if !expired(&s, now) {
            let at = field(&s, "expiration")?.parse::<jiff::Timestamp>().ok()?;
            return Duration::try_from(at.duration_since(now)).ok();
        }
        let ns = s.metadata.namespace.as_deref().unwrap_or_default();
        let name = s.metadata.name.as_deref().unwrap_or_default();
        tracing::info!(secret = k, "deleting an expired bootstrap token");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        // Only the Secret that was seen expired (not a replacement of the same name).
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: s.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(name, &dp).await {
            tracing::warn!(secret = k, error = %e, "deleting an expired bootstrap token");
            return Some(Duration::from_secs(10));
        }
        None
    }
}

impl Reconciler for TokenCleaner {
    type Error = String;

    fn name(&self) -> &str {
        "token-cleaner"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.secrets.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        Ok(TokenCleaner::sync(self, key).await.into())
    }
}
