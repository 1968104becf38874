//! The ephemeral volume controller (upstream `pkg/controller/volume/ephemeral`): each
//! generic ephemeral volume of a pod gets its claim, `<pod>-<volume>`, made from the
//! volume's claim template and owned by the pod (so it goes with it). A claim of that
//! name not owned by the pod is reported, not taken over.

use crate::controller_utils::reference;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use std::sync::Arc;

pub struct EphemeralController {
    client: kube::Client,
    pods: Arc<Informer<Pod>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

impl EphemeralController {
    pub fn new(
        client: kube::Client,
        pods: Arc<Informer<Pod>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("ephemeral_volume");
        let q = queue.clone();
        pods.add_handler(move |p, deleted| {
            let ephemeral = p
                .spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .any(|v| v.ephemeral.is_some());
            if !deleted && ephemeral && p.metadata.deletion_timestamp.is_none() {
                q.add(key(p));
            }
        });
        Arc::new(EphemeralController {
            client,
            pods,
            queue,
            recorder,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(pod) = self.pods.store.get(k) else {
            return Ok(());
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let Some(template) = v
                .ephemeral
                .as_ref()
                .and_then(|e| e.volume_claim_template.as_ref())
            else {
                continue;
            };
            let claim_name = format!("{name}-{}", v.name);
            if let Some(existing) = claims
                .get_opt(&claim_name)
                .await
                .map_err(|e| e.to_string())?
            {
                let owned = existing
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.controller == Some(true));
                if !owned {
                    self.recorder.eventf(
                        reference(pod.as_ref()),
                        "Warning",
                        "FailedBinding",
                        "",
                        format!("PVC {ns}/{claim_name} was not created for pod {ns}/{name} (pod is not owner)"),
                    );
                }
                continue;
            }
            let meta = template.metadata.clone().unwrap_or_default();
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name.clone()),
                    namespace: Some(ns.into()),
                    labels: meta.labels,
                    annotations: meta.annotations,
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        name: name.into(),
                        uid: uid.clone(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]),
                    ..Default::default()
                },
                spec: Some(template.spec.clone()),
                status: None,
            };
            match claims.create(&PostParams::default(), &claim).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

impl Reconciler for EphemeralController {
    type Error = String;

    fn name(&self) -> &str {
        "ephemeral-volume"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.pods.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        EphemeralController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use serde_json::json;

    /// One sync of a pod: a claim `<pod>-<volume>` owned by the pod for each generic
    /// ephemeral volume, none for other volumes.
    #[tokio::test]
    async fn sync_creates_ephemeral_claims() {
        for (name, ephemeral) in [("ephemeral", true), ("empty-dir", false)] {
            let env = Env::new(&format!("ephemeral-{name}")).await;
            let pods = env.informer::<Pod>();
            let c = EphemeralController::new(
                env.client.clone(),
                pods.clone(),
                env.recorder("ephemeral-volume-controller"),
            );
            env.start().await;
            let mut spec = pod_spec();
            spec["volumes"] = if ephemeral {
                json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}])
            } else {
                json!([{"name": "scratch", "emptyDir": {}}])
            };
            let pod: Pod = env
                .create(json!({"metadata": {"name": "worker"}, "spec": spec}))
                .await;
            env.cached(&pods, &[&pod]).await;
            env.sync(c.as_ref(), &env.key("worker")).await;

            let claims = env.list::<PersistentVolumeClaim>().await;
            assert_eq!(claims.len(), usize::from(ephemeral), "{name}");
            if let Some(claim) = claims.first() {
                assert_eq!(claim.metadata.name.as_deref(), Some("worker-scratch"));
                let owner = claim.metadata.owner_references.clone().unwrap_or_default();
                assert_eq!(
                    owner.first().map(|o| o.uid.clone()),
                    pod.metadata.uid.clone()
                );
                assert_eq!(owner.first().and_then(|o| o.controller), Some(true));
            }
        }
    }
}
