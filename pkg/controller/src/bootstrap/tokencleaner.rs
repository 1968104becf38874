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

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::bootstrap::{SECRET_PREFIX, SECRET_TYPE};
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a bootstrap token Secret: deleted once expired, otherwise kept until
    /// its expiration (the requeue).
    #[tokio::test]
    async fn sync_deletes_expired_tokens() {
        // (case, token id, expires in seconds, want kept)
        let cases = [
            ("expired", "exp001", -60, false),
            ("valid", "val001", 3600, true),
            ("no-expiry", "nox001", 0, true),
        ];
        let env = Env::new("tokencleaner").await;
        let secrets = env.informers.namespaced::<Secret>("kube-system");
        let c = TokenCleaner::new(env.client.clone(), secrets.clone());
        env.start().await;
        let api: Api<Secret> = Api::namespaced(env.client.clone(), "kube-system");
        for (name, id, expires_in, want_kept) in cases {
            let mut data = json!({"token-id": id, "token-secret": "0123456789abcdef"});
            if expires_in != 0 {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(expires_in);
                data["expiration"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {"name": format!("{SECRET_PREFIX}{id}"), "namespace": "kube-system"},
                "type": SECRET_TYPE, "stringData": data}))
            .unwrap();
            let secret = api.create(&Default::default(), &secret).await.unwrap();
            env.cached(&secrets, &[&secret]).await;
            let action = env
                .sync(c.as_ref(), &format!("kube-system/{SECRET_PREFIX}{id}"))
                .await;

            let kept = api
                .get_opt(&format!("{SECRET_PREFIX}{id}"))
                .await
                .unwrap()
                .is_some();
            assert_eq!(kept, want_kept, "{name}");
            assert_eq!(
                matches!(action, Action::RequeueAfter(_)),
                expires_in > 0,
                "{name}: {action:?}"
            );
            if kept {
                api.delete(&format!("{SECRET_PREFIX}{id}"), &Default::default())
                    .await
                    .unwrap();
            }
        }
    }
}
