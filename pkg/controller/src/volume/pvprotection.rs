//! The PV protection controller (upstream `pkg/controller/volume/pvprotection`):
//! volumes carry the `kubernetes.io/pv-protection` finalizer, removed once a deleted
//! volume is no longer bound to a claim.

use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, PostParams};
use std::sync::Arc;

pub const FINALIZER: &str = "kubernetes.io/pv-protection";

pub struct PvProtection {
    client: kube::Client,
    volumes: Arc<Informer<PersistentVolume>>,
    queue: Arc<Queue>,
}

impl PvProtection {
    pub fn new(client: kube::Client, volumes: Arc<Informer<PersistentVolume>>) -> Arc<Self> {
        let queue = Queue::named("pvprotection");
        let q = queue.clone();
        volumes.add_handler(move |v, deleted| {
            if !deleted {
                q.add(key(v));
            }
        });
        Arc::new(PvProtection {
            client,
            volumes,
            queue,
        })
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let Some(pv) = self.volumes.store.get(name) else {
            return Ok(());
        };
        let has = pv
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER);
        let deleting = pv.metadata.deletion_timestamp.is_some();
        let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let mut next = pv.as_ref().clone();
        let finalizers = next.metadata.finalizers.get_or_insert_with(Vec::new);
        if deleting && has && !bound {
            finalizers.retain(|f| f != FINALIZER);
        } else if !deleting && !has {
            finalizers.push(FINALIZER.into());
        } else {
            return Ok(());
        }
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.replace(name, &PostParams::default(), &next).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for PvProtection {
    type Error = String;

    fn name(&self) -> &str {
        "pv-protection"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.volumes.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        PvProtection::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a volume being deleted: its protection finalizer stays while it is
    /// Bound and goes (and the volume with it) once it is not.
    #[tokio::test]
    async fn sync_releases_unbound_volumes() {
        for (name, bound, want_kept) in [("bound", true, true), ("available", false, false)] {
            let env = Env::new(&format!("pvp-{name}")).await;
            let volumes = env.cluster_informer::<PersistentVolume>();
            let c = PvProtection::new(env.client.clone(), volumes.clone());
            env.start().await;
            let pv_name = format!("{}-pv", env.ns);
            env.create_cluster::<PersistentVolume>(json!({"metadata": {"name": pv_name, "finalizers": [FINALIZER]},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv"}}}))
                .await;
            let phase = if bound { "Bound" } else { "Available" };
            env.cluster_api::<PersistentVolume>()
                .patch_status(
                    &pv_name,
                    &Default::default(),
                    &kube::api::Patch::Merge(json!({"status": {"phase": phase}})),
                )
                .await
                .unwrap();
            env.cluster_api::<PersistentVolume>()
                .delete(&pv_name, &Default::default())
                .await
                .unwrap();
            let deleting = env
                .cluster_api::<PersistentVolume>()
                .get(&pv_name)
                .await
                .unwrap();
            env.cached(&volumes, &[&deleting]).await;
            env.sync(c.as_ref(), &pv_name).await;

            let got = env
                .cluster_api::<PersistentVolume>()
                .get_opt(&pv_name)
                .await
                .unwrap();
            assert_eq!(got.is_some(), want_kept, "{name}");
            if got.is_some() {
                env.cluster_api::<PersistentVolume>()
                    .patch(
                        &pv_name,
                        &Default::default(),
                        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .unwrap();
            }
        }
    }
}
