//! The PVC protection controller (upstream `pkg/controller/volume/pvcprotection`):
//! claims carry the `kubernetes.io/pvc-protection` finalizer, removed once a deleted
//! claim is no longer used by any unfinished pod (checked against the apiserver, not
//! only the cache, before letting go).

use super::pod_uses_claim;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use std::sync::Arc;

pub const FINALIZER: &str = "kubernetes.io/pvc-protection";

pub struct PvcProtection {
    client: kube::Client,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<Queue>,
}

impl PvcProtection {
    pub fn new(
        client: kube::Client,
        claims: Arc<Informer<PersistentVolumeClaim>>,
        pods: Arc<Informer<Pod>>,
    ) -> Arc<Self> {
        let queue = Queue::named("pvcprotection");
        let q = queue.clone();
        claims.add_handler(move |c, deleted| {
            if !deleted {
                q.add(key(c));
            }
        });
        // A pod going away may free the claims it used.
        let q = queue.clone();
        pods.add_handler(move |p, deleted| {
            let finished = matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            if !(deleted || finished) {
                return;
            }
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let pod = p.metadata.name.as_deref().unwrap_or_default();
            for v in p.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                if let Some(c) = &v.persistent_volume_claim {
                    q.add(format!("{ns}/{}", c.claim_name));
                } else if v.ephemeral.is_some() {
                    q.add(format!("{ns}/{pod}-{}", v.name));
                }
            }
        });
        Arc::new(PvcProtection {
            client,
            claims,
            pods,
            queue,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(claim) = self.claims.store.get_in(ns, name) else {
            return Ok(());
        };
        let has = claim
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER);
        let deleting = claim.metadata.deletion_timestamp.is_some();
        let mut next = claim.as_ref().clone();
        if deleting && has {
            let cached_use =
                self.pods.store.state().iter().any(|p| {
                    p.metadata.namespace.as_deref() == Some(ns) && pod_uses_claim(p, name)
                });
            if cached_use {
                return Ok(());
            }
            // The cache may lag: ask the apiserver before letting go.
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let live = pods
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            if live.items.iter().any(|p| pod_uses_claim(p, name)) {
                return Ok(());
            }
            next.metadata
                .finalizers
                .get_or_insert_with(Vec::new)
                .retain(|f| f != FINALIZER);
        } else if !deleting && !has {
            next.metadata
                .finalizers
                .get_or_insert_with(Vec::new)
                .push(FINALIZER.into());
        } else {
            return Ok(());
        }
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        match api.replace(name, &PostParams::default(), &next).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for PvcProtection {
    type Error = String;

    fn name(&self) -> &str {
        "pvc-protection"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.claims.clone(), self.pods.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        PvcProtection::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use serde_json::json;

    /// One sync of a claim being deleted: its protection finalizer stays while a pod
    /// uses it and goes (and the claim with it) once none does.
    #[tokio::test]
    async fn sync_releases_unused_claims() {
        for (name, used, want_kept) in [("in-use", true, true), ("unused", false, false)] {
            let env = Env::new(&format!("pvcp-{name}")).await;
            let (claims, pods) = (
                env.informer::<PersistentVolumeClaim>(),
                env.informer::<Pod>(),
            );
            let c = PvcProtection::new(env.client.clone(), claims.clone(), pods.clone());
            env.start().await;
            env.create::<PersistentVolumeClaim>(json!({"metadata": {"name": "data", "finalizers": [FINALIZER]},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
                .await;
            if used {
                let mut spec = pod_spec();
                spec["volumes"] =
                    json!([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]);
                let pod: Pod = env
                    .create(json!({"metadata": {"name": "user"}, "spec": spec}))
                    .await;
                env.cached(&pods, &[&pod]).await;
            }
            env.api::<PersistentVolumeClaim>()
                .delete("data", &Default::default())
                .await
                .unwrap();
            let deleting = env
                .api::<PersistentVolumeClaim>()
                .get("data")
                .await
                .unwrap();
            env.cached(&claims, &[&deleting]).await;
            pods.synced().await;
            env.sync(c.as_ref(), &env.key("data")).await;

            let got = env
                .api::<PersistentVolumeClaim>()
                .get_opt("data")
                .await
                .unwrap();
            assert_eq!(got.is_some(), want_kept, "{name}");
        }
    }
}
