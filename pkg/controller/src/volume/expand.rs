//! The volume expansion controller (upstream `pkg/controller/volume/expand`): a bound
//! claim asking for more than it has is handed to its CSI driver's resizer (the
//! `volume.kubernetes.io/storage-resizer` annotation the external-resizer looks for);
//! claims on volumes no plugin here can grow are left for an external controller, with
//! upstream's `ExternalExpanding` event either way.

use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::resource::Quantity;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use std::sync::Arc;

pub const STORAGE_RESIZER: &str = "volume.kubernetes.io/storage-resizer";

/// What a claim needs from the controller.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Nothing,
    /// Name the CSI driver as the claim's resizer.
    SetResizer(String),
    /// Already named: only the event.
    Waiting,
    /// No plugin here can grow the volume.
    NoPlugin,
}

fn storage(
    m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Option<Quantity> {
    Quantity::parse(&m?.get("storage")?.0)
}

/// The pure decision for one claim and its volume.
pub fn decide(pvc: &PersistentVolumeClaim, pv: Option<&PersistentVolume>) -> Decision {
    let Some(spec) = &pvc.spec else {
        return Decision::Nothing;
    };
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let (Some(pv), true) = (pv, bound) else {
        return Decision::Nothing;
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return Decision::Nothing;
    }
    let requested = storage(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let status = pvc.status.as_ref();
    let current = storage(status.and_then(|s| s.capacity.as_ref()));
    let allocated = storage(status.and_then(|s| s.allocated_resources.as_ref()));
    let (Some(requested), Some(current)) = (requested, current) else {
        return Decision::Nothing;
    };
    // Growing (or a resize already under way that asked for more than the claim has).
    let wanted = requested > current || allocated.is_some_and(|a| a > current);
    if !wanted {
        return Decision::Nothing;
    }
    match pv.spec.as_ref().and_then(|s| s.csi.as_ref()) {
        Some(csi) => {
            let named = pvc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(STORAGE_RESIZER));
            if named == Some(&csi.driver) {
                Decision::Waiting
            } else {
                Decision::SetResizer(csi.driver.clone())
            }
        }
        None => Decision::NoPlugin,
    }
}

pub struct ExpandController {
    client: kube::Client,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

impl ExpandController {
    pub fn new(
        client: kube::Client,
        claims: Arc<Informer<PersistentVolumeClaim>>,
        volumes: Arc<Informer<PersistentVolume>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("volume_expand");
        let q = queue.clone();
        claims.add_handler(move |c, deleted| {
            if !deleted {
                q.add(key(c));
            }
        });
        // A volume bound late makes its claim worth a look again.
        let q = queue.clone();
        volumes.add_handler(move |v, deleted| {
            if let (false, Some(r)) = (deleted, v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()))
            {
                q.add(format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.name.as_deref().unwrap_or_default()
                ));
            }
        });
        Arc::new(ExpandController {
            client,
            claims,
            volumes,
            queue,
            recorder,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(claim) = self.claims.store.get_in(ns, name) else {
            return Ok(());
        };
        let pv = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .and_then(|v| self.volumes.store.get(v));
        let event = |type_: &str, note: &str| {
            self.recorder.eventf(
                crate::controller_utils::reference(claim.as_ref()),
                type_,
                "ExternalExpanding",
                "Resize",
                note.to_string(),
            );
        };
        match decide(&claim, pv.as_deref()) {
            Decision::Nothing => Ok(()),
            Decision::Waiting => Ok(()),
            Decision::NoPlugin => {
                event(
                    "Normal",
                    "didn't find a plugin capable of expanding the volume; waiting for an external controller to process this PVC.",
                );
                Ok(())
            }
            Decision::SetResizer(driver) => {
                event(
                    "Normal",
                    "waiting for an external controller to expand this PVC",
                );
                let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
                let patch =
                    serde_json::json!({"metadata": {"annotations": {STORAGE_RESIZER: driver}}});
                // Through the status subresource, as upstream (its role may not patch
                // claims).
                match api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

impl Reconciler for ExpandController {
    type Error = String;

    fn name(&self) -> &str {
        "volume_expand"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.claims.clone(), self.volumes.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        ExpandController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(request: &str, capacity: &str, resizer: Option<&str>) -> PersistentVolumeClaim {
        let mut c: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"volumeName": "pv", "resources": {"requests": {"storage": request}}},
            "status": {"phase": "Bound", "capacity": {"storage": capacity}},
        }))
        .unwrap();
        if let Some(r) = resizer {
            c.metadata.annotations = Some([(STORAGE_RESIZER.to_string(), r.to_string())].into());
        }
        c
    }

    fn volume(csi: bool) -> PersistentVolume {
        let source = if csi {
            json!({"csi": {"driver": "hostpath.csi.k8s.io", "volumeHandle": "h"}})
        } else {
            json!({"hostPath": {"path": "/tmp"}})
        };
        let mut spec = json!({"capacity": {"storage": "1Gi"}});
        spec.as_object_mut()
            .unwrap()
            .extend(source.as_object().unwrap().clone());
        serde_json::from_value(json!({"metadata": {"name": "pv"}, "spec": spec})).unwrap()
    }

    #[test]
    fn claims_growing_are_handed_to_their_driver() {
        let csi = volume(true);
        assert_eq!(
            decide(&claim("2Gi", "1Gi", None), Some(&csi)),
            Decision::SetResizer("hostpath.csi.k8s.io".into())
        );
        assert_eq!(
            decide(
                &claim("2Gi", "1Gi", Some("hostpath.csi.k8s.io")),
                Some(&csi)
            ),
            Decision::Waiting
        );
        assert_eq!(
            decide(&claim("1Gi", "1Gi", None), Some(&csi)),
            Decision::Nothing
        );
        assert_eq!(decide(&claim("2Gi", "1Gi", None), None), Decision::Nothing);
        assert_eq!(
            decide(&claim("2Gi", "1Gi", None), Some(&volume(false))),
            Decision::NoPlugin
        );
        let mut unbound = claim("2Gi", "1Gi", None);
        unbound.status.as_mut().unwrap().phase = Some("Pending".into());
        assert_eq!(decide(&unbound, Some(&csi)), Decision::Nothing);
    }
}
