//! The PersistentVolume binder (upstream `pkg/controller/volume/persistentvolume`):
//! pending claims are bound to the smallest available volume that satisfies them
//! (class, access modes, volume mode, size, selector), or to the volume they name;
//! binds begun elsewhere (the scheduler setting a volume's claimRef) are completed;
//! claims no volume satisfies are handed to their class's external provisioner
//! (`volume.kubernetes.io/storage-provisioner`), after the scheduler picked a node for
//! WaitForFirstConsumer classes; a volume whose claim is gone is Released (Retain) or
//! left for its provisioner to delete (Delete). Every `--pvclaimbinder-sync-period`
//! all claims and volumes are looked at again.

use crate::controller_utils::reference;
use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::labels::Selector;
use apimachinery::resource::Quantity;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

pub struct PersistentVolumeController {
    client: kube::Client,
    volumes: Arc<Informer<PersistentVolume>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    classes: Arc<Informer<StorageClass>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
    resync: Duration,
}

fn annotation<'a>(
    m: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    k: &str,
) -> Option<&'a str> {
    m.annotations.as_ref()?.get(k).map(String::as_str)
}

fn claim_class(c: &PersistentVolumeClaim) -> String {
    c.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn volume_class(v: &PersistentVolume) -> String {
    v.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn phase_of_volume(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn capacity(v: &PersistentVolume) -> Option<Quantity> {
    let q = v.spec.as_ref()?.capacity.as_ref()?.get("storage")?;
    Quantity::parse(&q.0)
}

fn request(c: &PersistentVolumeClaim) -> Option<Quantity> {
    let q = c
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    Quantity::parse(&q.0)
}

/// Whether the volume's claimRef names this claim (uid checked once it is set).
fn claimed_by(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    v.spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| {
            r.name == c.metadata.name
                && r.namespace == c.metadata.namespace
                && r.uid
                    .as_ref()
                    .is_none_or(|u| Some(u) == c.metadata.uid.as_ref())
        })
}

/// Upstream's matching rules for a claim and a volume (other than binding state).
fn satisfies(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    let (Some(vs), Some(cs)) = (v.spec.as_ref(), c.spec.as_ref()) else {
        return false;
    };
    if volume_class(v) != claim_class(c) {
        return false;
    }
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| "Filesystem".into());
    if mode(&vs.volume_mode) != mode(&cs.volume_mode) {
        return false;
    }
    let have = vs.access_modes.clone().unwrap_or_default();
    if !cs.access_modes.iter().flatten().all(|m| have.contains(m)) {
        return false;
    }
    match (capacity(v), request(c)) {
        (Some(cap), Some(req)) if cap < req => return false,
        (None, Some(_)) => return false,
        _ => {}
    }
    if let Some(sel) = &cs.selector {
        let labels = v.metadata.labels.clone().unwrap_or_default();
        let Ok(sel) = serde_json::to_value(sel)
            .map_err(|e| e.to_string())
            .and_then(|s| Selector::from_label_selector(Some(&s)))
        else {
            return false;
        };
        if !sel.matches(&labels) {
            return false;
        }
    }
    true
}

impl PersistentVolumeController {
    pub fn new(
        client: kube::Client,
        volumes: Arc<Informer<PersistentVolume>>,
        claims: Arc<Informer<PersistentVolumeClaim>>,
        classes: Arc<Informer<StorageClass>>,
        recorder: Arc<Recorder>,
        resync: Duration,
    ) -> Arc<Self> {
        let queue = Queue::named("volumes");
        let q = queue.clone();
        claims.add_handler(move |c, deleted| {
            q.add(format!("claim/{}", key(c)));
            // A claim that goes away releases its volume.
            if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.as_ref())
                && deleted
            {
                q.add(format!("volume/{v}"));
            }
        });
        let q = queue.clone();
        volumes.add_handler(move |v, deleted| {
            q.add(format!("volume/{}", key(v)));
            // A volume that changed may complete or free its claim.
            if let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
                && let (Some(ns), Some(n)) = (&r.namespace, &r.name)
                && !deleted
            {
                q.add(format!("claim/{ns}/{n}"));
            }
        });
        Arc::new(PersistentVolumeController {
            client,
            volumes,
            claims,
            classes,
            queue,
            recorder,
            resync,
        })
    }

    fn claim(&self, ns: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.store.get_in(ns, name)
    }

    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.volumes.store.get(name)
    }

    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.store.get(name)
    }

    fn event(&self, c: &PersistentVolumeClaim, type_: &str, reason: &str, note: String) {
        self.recorder.eventf(reference(c), type_, reason, "", note);
    }

    async fn sync_claim(&self, k: &str) -> Result<(), String> {
        let Some((ns, name)) = k.split_once('/') else {
            return Ok(());
        };
        let Some(claim) = self.claim(ns, name) else {
            return Ok(());
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        let completed = annotation(&claim.metadata, BIND_COMPLETED).is_some();
        if completed && !volume_name.is_empty() {
            // Bound before: keep it so, or report the volume lost.
            return match self.volume(&volume_name) {
                Some(v) if claimed_by(&v, &claim) => self.bind(&v, &claim, false).await,
                _ => {
                    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Lost") {
                        self.event(&claim, "Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into());
                        self.claim_phase(&claim, "Lost").await?;
                    }
                    Ok(())
                }
            };
        }
        if !volume_name.is_empty() {
            // Pre-bound by the user to a named volume.
            return match self.volume(&volume_name) {
                Some(v) => {
                    let free = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_none()
                        || claimed_by(&v, &claim);
                    if free {
                        self.bind(&v, &claim, false).await
                    } else {
                        self.event(
                            &claim,
                            "Warning",
                            "FailedBinding",
                            "volume already bound to a different claim.".into(),
                        );
                        Ok(())
                    }
                }
                None => {
                    self.event(
                        &claim,
                        "Normal",
                        "FailedBinding",
                        format!("volume \"{volume_name}\" not found"),
                    );
                    Ok(())
                }
            };
        }
        // A volume the scheduler (or a user) already points at this claim.
        let volumes = self.volumes.store.state();
        if let Some(v) = volumes.iter().find(|v| {
            claimed_by(v, &claim)
                && v.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some_and(|r| r.uid.is_some())
        }) {
            return self.bind(v, &claim, true).await;
        }
        let class_name = claim_class(&claim);
        let class = (!class_name.is_empty())
            .then(|| self.class(&class_name))
            .flatten();
        let delayed = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        let selected = annotation(&claim.metadata, SELECTED_NODE).is_some();
        if delayed && !selected {
            self.event(
                &claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".into(),
            );
            return Ok(());
        }
        // The smallest available volume that satisfies the claim.
        let best = volumes
            .iter()
            .filter(|v| {
                v.metadata.deletion_timestamp.is_none()
                    && (v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_none()
                        || claimed_by(v, &claim))
                    && satisfies(v, &claim)
            })
            .min_by(|a, b| capacity(a).cmp(&capacity(b)));
        if let Some(v) = best {
            return self.bind(v, &claim, true).await;
        }
        match class {
            Some(c) if c.provisioner != NO_PROVISIONER => {
                if annotation(&claim.metadata, STORAGE_PROVISIONER) != Some(c.provisioner.as_str())
                {
                    let mut next = claim.as_ref().clone();
                    let a = next.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    a.insert(STORAGE_PROVISIONER.into(), c.provisioner.clone());
                    a.insert(BETA_STORAGE_PROVISIONER.into(), c.provisioner.clone());
                    self.replace_claim(&next).await?;
                }
                self.event(&claim, "Normal", "ExternalProvisioning", format!("Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", c.provisioner));
            }
            Some(_) => self.event(
                &claim,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim".into(),
            ),
            None if class_name.is_empty() => self.event(
                &claim,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set".into(),
            ),
            None => self.event(
                &claim,
                "Warning",
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            ),
        }
        Ok(())
    }

    async fn sync_volume(&self, name: &str) -> Result<(), String> {
        let Some(pv) = self.volume(name) else {
            return Ok(());
        };
        if pv.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            if phase_of_volume(&pv) != "Available" {
                self.volume_phase(&pv, "Available", None).await?;
            }
            return Ok(());
        };
        let (ns, claim_name) = (
            r.namespace.clone().unwrap_or_default(),
            r.name.clone().unwrap_or_default(),
        );
        let claim = self.claim(&ns, &claim_name);
        let Some(uid) = r.uid.clone() else {
            // Pre-bound to a claim by name: the claim's sync binds it.
            if phase_of_volume(&pv) != "Available" {
                self.volume_phase(&pv, "Available", None).await?;
            }
            return Ok(());
        };
        match claim {
            Some(c) if c.metadata.uid.as_deref() == Some(uid.as_str()) => {
                let vn = c
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.clone())
                    .unwrap_or_default();
                if vn.is_empty() || vn == name {
                    if phase_of_volume(&pv) != "Bound" && vn == name {
                        self.volume_phase(&pv, "Bound", None).await?;
                    }
                    return Ok(());
                }
                // The claim is bound to another volume: a controller-made bind is undone.
                if annotation(&pv.metadata, BOUND_BY_CONTROLLER).is_some() {
                    let mut next = pv.as_ref().clone();
                    if let Some(s) = next.spec.as_mut() {
                        s.claim_ref = None;
                    }
                    self.replace_volume(&next).await?;
                }
                Ok(())
            }
            _ => {
                // The claim is gone: apply the reclaim policy.
                let policy = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.persistent_volume_reclaim_policy.clone())
                    .unwrap_or_else(|| "Retain".into());
                match (phase_of_volume(&pv), policy.as_str()) {
                    ("Released" | "Failed", _) => Ok(()),
                    (_, "Delete") if annotation(&pv.metadata, PROVISIONED_BY).is_none() => {
                        self.volume_phase(
                            &pv,
                            "Failed",
                            Some(format!("error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched")),
                        )
                        .await
                    }
                    // Retain keeps the data; an external provisioner deletes its own.
                    _ => self.volume_phase(&pv, "Released", None).await,
                }
            }
        }
    }

    /// Binds both ways (volume claimRef and phase, claim volumeName, annotations,
    /// phase, capacity), skipping the parts already done.
    async fn bind(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
        by_controller: bool,
    ) -> Result<(), String> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let want_ref = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: claim.metadata.name.clone(),
            namespace: claim.metadata.namespace.clone(),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            ..Default::default()
        };
        let mut pv_now = pv.clone();
        let has_ref = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some_and(|r| r.uid == claim.metadata.uid);
        if !has_ref {
            let mut next = pv.clone();
            let s = next.spec.get_or_insert_with(Default::default);
            let prebound = s.claim_ref.is_some();
            s.claim_ref = Some(want_ref);
            if by_controller && !prebound {
                next.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            pv_now = self.replace_volume(&next).await?;
        }
        if phase_of_volume(&pv_now) != "Bound" {
            self.volume_phase(&pv_now, "Bound", None).await?;
        }
        let mut claim_now = claim.clone();
        let named =
            claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(pv_name.as_str());
        if !named || annotation(&claim.metadata, BIND_COMPLETED).is_none() {
            let mut next = claim.clone();
            next.spec.get_or_insert_with(Default::default).volume_name = Some(pv_name.clone());
            let a = next.metadata.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(BIND_COMPLETED.into(), "yes".into());
            if !named {
                a.insert(BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            claim_now = self.replace_claim(&next).await?;
        }
        if claim_now.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            let vs = pv_now.spec.clone().unwrap_or_default();
            let status = json!({"status": {"phase": "Bound", "accessModes": vs.access_modes, "capacity": vs.capacity}});
            let api: Api<PersistentVolumeClaim> = Api::namespaced(
                self.client.clone(),
                claim.metadata.namespace.as_deref().unwrap_or_default(),
            );
            crate::controller_utils::update_status(&api, &claim_now, &status).await?;
        }
        Ok(())
    }

    async fn replace_volume(&self, pv: &PersistentVolume) -> Result<PersistentVolume, String> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.replace(
            pv.metadata.name.as_deref().unwrap_or_default(),
            &PostParams::default(),
            pv,
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn replace_claim(
        &self,
        c: &PersistentVolumeClaim,
    ) -> Result<PersistentVolumeClaim, String> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.client.clone(),
            c.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.replace(
            c.metadata.name.as_deref().unwrap_or_default(),
            &PostParams::default(),
            c,
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn volume_phase(
        &self,
        pv: &PersistentVolume,
        phase: &str,
        message: Option<String>,
    ) -> Result<(), String> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let mut status = json!({"status": {"phase": phase}});
        if let Some(m) = message {
            status["status"]["message"] = json!(m);
            status["status"]["reason"] = json!("VolumeFailedDelete");
        }
        crate::controller_utils::update_status(&api, pv, &status).await
    }

    async fn claim_phase(&self, c: &PersistentVolumeClaim, phase: &str) -> Result<(), String> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.client.clone(),
            c.metadata.namespace.as_deref().unwrap_or_default(),
        );
        crate::controller_utils::update_status(&api, c, &json!({"status": {"phase": phase}})).await
    }
}

impl Reconciler for PersistentVolumeController {
    type Error = String;

    fn name(&self) -> &str {
        "persistentvolume-binder"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.volumes.clone(),
            self.claims.clone(),
            self.classes.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        match key.split_once('/') {
            Some(("claim", rest)) => self.sync_claim(rest).await,
            Some(("volume", rest)) => self.sync_volume(rest).await,
            _ => Ok(()),
        }
        .map(Action::from)
    }

    /// Every claim and volume again each resync period (upstream's periodic resync).
    fn on_synced(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.resync).await;
                for c in me.claims.store.state() {
                    me.queue.add(format!("claim/{}", key(c.as_ref())));
                }
                for v in me.volumes.store.state() {
                    me.queue.add(format!("volume/{}", key(v.as_ref())));
                }
            }
        });
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a pending claim: bound to a fitting Available volume of its class
    /// (both sides written), left Pending when none fits.
    #[tokio::test]
    async fn sync_binds_claims_to_fitting_volumes() {
        // (case, volume size, claim pre-bound to the volume by name, want bound)
        let cases = [
            ("fits", "2Gi", false, true),
            ("too-small", "500Mi", false, false),
            ("pre-bound", "1Gi", true, true),
        ];
        for (name, size, prebound, want) in cases {
            let env = Env::new(&format!("pv-{name}")).await;
            let (volumes, claims, classes) = (
                env.cluster_informer::<PersistentVolume>(),
                env.informer::<PersistentVolumeClaim>(),
                env.cluster_informer::<StorageClass>(),
            );
            let c = PersistentVolumeController::new(
                env.client.clone(),
                volumes.clone(),
                claims.clone(),
                classes.clone(),
                env.recorder("persistentvolume-binder-controller"),
                Duration::from_secs(15),
            );
            env.start().await;
            let class = env.ns.clone();
            let pv_name = format!("{}-pv", env.ns);
            let pv: PersistentVolume = env
                .create_cluster(json!({"metadata": {"name": pv_name}, "spec": {
                    "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                    "storageClassName": class, "hostPath": {"path": "/tmp/pv"}}}))
                .await;
            let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "resources": {"requests": {"storage": "1Gi"}}});
            if prebound {
                spec["volumeName"] = json!(pv_name);
            }
            let pvc: PersistentVolumeClaim = env
                .create(json!({"metadata": {"name": "data"}, "spec": spec}))
                .await;
            env.cached(&volumes, &[&pv]).await;
            env.cached(&claims, &[&pvc]).await;
            classes.synced().await;
            env.sync(c.as_ref(), &format!("claim/{}", env.key("data")))
                .await;

            let got_pv = env
                .cluster_api::<PersistentVolume>()
                .get(&pv_name)
                .await
                .unwrap();
            let claim_ref = got_pv.spec.unwrap_or_default().claim_ref;
            assert_eq!(
                claim_ref.as_ref().and_then(|r| r.name.clone()).as_deref() == Some("data"),
                want,
                "{name}: volume's claimRef {claim_ref:?}"
            );
            let got_pvc = env
                .api::<PersistentVolumeClaim>()
                .get("data")
                .await
                .unwrap();
            assert_eq!(
                got_pvc.spec.unwrap_or_default().volume_name.as_deref() == Some(pv_name.as_str()),
                want,
                "{name}: claim's volumeName"
            );
            if !want {
                let phase = got_pvc.status.and_then(|s| s.phase);
                assert_eq!(phase.as_deref(), Some("Pending"), "{name}");
            }
        }
    }
}
