//! The PV protection controller (upstream `pkg/controller/volume/pvprotection`):
//! volumes carry the `kubernetes.io/pv-protection` finalizer, removed once a deleted
//! volume is no longer bound to a claim.

use crate::informer::{Informer, key};
use crate::workqueue::Queue;
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

    pub async fn run(self: Arc<Self>) {
        self.volumes.synced().await;
        while let Some(k) = self.queue.get().await {
            match self.sync(&k).await {
                Ok(()) => self.queue.forget(&k),
                Err(e) => {
                    tracing::warn!(volume = k, error = %e, "pv protection; retrying");
                    self.queue.add_rate_limited(k.clone());
                }
            }
            self.queue.done(&k);
        }
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let Some(pv) = self
            .volumes
            .store
            .state()
            .into_iter()
            .find(|v| v.metadata.name.as_deref() == Some(name))
        else {
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
