//! The attach/detach controller (upstream `pkg/controller/volume/attachdetach`), for CSI
//! volumes: the volumes a node's pods use, of drivers that attach (their CSIDriver says
//! `attachRequired`, or they have none), get a VolumeAttachment for the node, which the
//! driver's attacher acts on; attachments no pod on the node needs any more are deleted
//! once the kubelet no longer reports the volume in use (`node.status.volumesInUse`);
//! attached volumes are listed in `node.status.volumesAttached`. Synced per node.

use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSIDriver, VolumeAttachment};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// A volume on a node: what the attachment names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttachedVolume {
    pub pv: String,
    pub driver: String,
    pub handle: String,
}

impl AttachedVolume {
    /// The volume's name in node status (`kubernetes.io/csi/<driver>^<handle>`).
    pub fn unique_name(&self) -> String {
        csi::names::unique_volume_name(&self.driver, &self.handle)
    }
}

/// Whether a pod still needs its volumes attached: it is not finished, and a deleted
/// pod only until its containers stopped.
pub fn pod_needs_volumes(p: &Pod) -> bool {
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if p.metadata.deletion_timestamp.is_none() {
        return true;
    }
    status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// What one node's sync does.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<AttachedVolume>,
    /// Attachments to delete (by name).
    pub delete: Vec<String>,
    /// Attachments kept because the kubelet still uses the volume.
    pub waiting: Vec<String>,
    /// `node.status.volumesAttached` names, sorted.
    pub attached: Vec<String>,
}

/// The pure decision for a node: `desired` volumes, the node's current attachments
/// (name, volume, attached), and the volumes the kubelet reports in use.
pub fn plan(
    desired: &BTreeSet<AttachedVolume>,
    current: &[(String, AttachedVolume, bool)],
    in_use: &BTreeSet<String>,
) -> Plan {
    let mut p = Plan::default();
    let have: BTreeSet<&AttachedVolume> = current.iter().map(|(_, v, _)| v).collect();
    p.create = desired
        .iter()
        .filter(|v| !have.contains(v))
        .cloned()
        .collect();
    for (name, v, attached) in current {
        if desired.contains(v) {
            if *attached {
                p.attached.push(v.unique_name());
            }
        } else if in_use.contains(&v.unique_name()) {
            p.waiting.push(name.clone());
            if *attached {
                p.attached.push(v.unique_name());
            }
        } else {
            p.delete.push(name.clone());
        }
    }
    p.attached.sort();
    p.attached.dedup();
    p
}

pub struct AttachDetachController {
    client: kube::Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
    attachments: Arc<Informer<VolumeAttachment>>,
    drivers: Arc<Informer<CSIDriver>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

impl AttachDetachController {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        claims: Arc<Informer<PersistentVolumeClaim>>,
        volumes: Arc<Informer<PersistentVolume>>,
        attachments: Arc<Informer<VolumeAttachment>>,
        drivers: Arc<Informer<CSIDriver>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("attachdetach");
        let q = queue.clone();
        pods.add_handler(move |p, _| {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                q.add(n.to_string());
            }
        });
        let q = queue.clone();
        nodes.add_handler(move |n, _| q.add(key(n)));
        let q = queue.clone();
        attachments.add_handler(move |va, _| q.add(va.spec.node_name.clone()));
        // A claim bound or a volume or driver changed: every node looks again.
        let all_nodes = {
            let (q, n) = (queue.clone(), nodes.clone());
            Arc::new(move || {
                for x in n.store.state() {
                    q.add(key(x.as_ref()));
                }
            })
        };
        let a = all_nodes.clone();
        claims.add_handler(move |_, _| a());
        let a = all_nodes.clone();
        volumes.add_handler(move |_, _| a());
        drivers.add_handler(move |_, _| all_nodes());
        Arc::new(AttachDetachController {
            client,
            pods,
            nodes,
            claims,
            volumes,
            attachments,
            drivers,
            queue,
            recorder,
        })
    }

    /// Whether the driver's volumes are attached (no CSIDriver: yes, as upstream).
    fn attach_required(&self, driver: &str) -> bool {
        self.drivers
            .store
            .get(driver)
            .is_none_or(|d| d.spec.attach_required.unwrap_or(true))
    }

    /// The attachable CSI volumes the node's pods use, with the pods using each.
    fn desired(&self, node: &str) -> BTreeMap<AttachedVolume, Vec<Arc<Pod>>> {
        let mut out: BTreeMap<AttachedVolume, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in self.pods.store.state() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
                || !pod_needs_volumes(&p)
            {
                continue;
            }
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let name = p.metadata.name.as_deref().unwrap_or_default();
            for v in p.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                let claim = match (&v.persistent_volume_claim, &v.ephemeral) {
                    (Some(c), _) => c.claim_name.clone(),
                    (None, Some(_)) => format!("{name}-{}", v.name),
                    _ => continue,
                };
                let Some(pv) = self
                    .claims
                    .store
                    .get_in(ns, &claim)
                    .and_then(|c| c.spec.as_ref()?.volume_name.clone())
                    .and_then(|pv| self.volumes.store.get(&pv))
                else {
                    continue;
                };
                let Some(csi) = pv.spec.as_ref().and_then(|s| s.csi.as_ref()) else {
                    continue;
                };
                if !self.attach_required(&csi.driver) {
                    continue;
                }
                out.entry(AttachedVolume {
                    pv: pv.metadata.name.clone().unwrap_or_default(),
                    driver: csi.driver.clone(),
                    handle: csi.volume_handle.clone(),
                })
                .or_default()
                .push(p.clone());
            }
        }
        out
    }

    async fn sync(&self, node: &str) -> Result<Option<Duration>, String> {
        let desired = self.desired(node);
        let current: Vec<(String, AttachedVolume, bool, Option<String>)> = self
            .attachments
            .store
            .state()
            .iter()
            .filter(|va| va.spec.node_name == node && va.metadata.deletion_timestamp.is_none())
            .filter_map(|va| {
                let pv = va.spec.source.persistent_volume_name.clone()?;
                let handle = self
                    .volumes
                    .store
                    .get(&pv)
                    .and_then(|v| Some(v.spec.as_ref()?.csi.as_ref()?.volume_handle.clone()))
                    .unwrap_or_default();
                let status = va.status.as_ref();
                Some((
                    va.metadata.name.clone().unwrap_or_default(),
                    AttachedVolume {
                        pv,
                        driver: va.spec.attacher.clone(),
                        handle,
                    },
                    status.is_some_and(|s| s.attached),
                    status.and_then(|s| s.attach_error.as_ref()?.message.clone()),
                ))
            })
            .collect();
        let node_obj = self.nodes.store.get(node);
        let in_use: BTreeSet<String> = node_obj
            .as_ref()
            .and_then(|n| n.status.as_ref()?.volumes_in_use.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        // A node that is gone uses nothing.
        let in_use = if node_obj.is_some() {
            in_use
        } else {
            BTreeSet::new()
        };
        let desired_set: BTreeSet<AttachedVolume> = desired.keys().cloned().collect();
        let plain: Vec<_> = current
            .iter()
            .map(|(n, v, a, _)| (n.clone(), v.clone(), *a))
            .collect();
        let p = plan(&desired_set, &plain, &in_use);
        let api: Api<VolumeAttachment> = Api::all(self.client.clone());
        for v in &p.create {
            let va: VolumeAttachment = serde_json::from_value(json!({
                "apiVersion": "storage.k8s.io/v1",
                "kind": "VolumeAttachment",
                "metadata": {"name": csi::names::attachment_name(&v.handle, &v.driver, node)},
                "spec": {"attacher": v.driver, "nodeName": node, "source": {"persistentVolumeName": v.pv}},
            }))
            .map_err(|e| e.to_string())?;
            match api.create(&PostParams::default(), &va).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        for name in &p.delete {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // Attach failures are told to the pods waiting for the volume.
        for (_, v, _, error) in &current {
            if let (Some(msg), Some(pods)) = (error, desired.get(v)) {
                for pod in pods {
                    self.recorder.eventf(
                        crate::controller_utils::reference(pod.as_ref()),
                        "Warning",
                        "FailedAttachVolume",
                        "Attach",
                        format!("AttachVolume.Attach failed for volume \"{}\" : {msg}", v.pv),
                    );
                }
            }
        }
        if let Some(n) = node_obj {
            let reported: Vec<String> = n
                .status
                .as_ref()
                .and_then(|s| s.volumes_attached.as_ref())
                .map(|v| v.iter().map(|a| a.name.clone()).collect())
                .unwrap_or_default();
            let mut sorted = reported.clone();
            sorted.sort();
            if sorted != p.attached {
                let list: Vec<_> = p
                    .attached
                    .iter()
                    .map(|name| json!({"name": name, "devicePath": ""}))
                    .collect();
                let nodes: Api<Node> = Api::all(self.client.clone());
                nodes
                    .patch_status(
                        node,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"status": {"volumesAttached": list}})),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        // Detaches waiting for the kubelet to let go are looked at again.
        Ok((!p.waiting.is_empty()).then_some(Duration::from_secs(5)))
    }
}

impl Reconciler for AttachDetachController {
    type Error = String;

    fn name(&self) -> &str {
        "attachdetach"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.pods.clone(),
            self.nodes.clone(),
            self.claims.clone(),
            self.volumes.clone(),
            self.attachments.clone(),
            self.drivers.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        AttachDetachController::sync(self, key)
            .await
            .map(Action::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(pv: &str) -> AttachedVolume {
        AttachedVolume {
            pv: pv.into(),
            driver: "d".into(),
            handle: format!("h-{pv}"),
        }
    }

    #[test]
    fn attachments_follow_the_pods_and_wait_for_the_kubelet() {
        let desired: BTreeSet<_> = [vol("a"), vol("b")].into();
        let current = vec![
            ("va-a".to_string(), vol("a"), true),
            ("va-c".to_string(), vol("c"), true),
            ("va-d".to_string(), vol("d"), false),
        ];
        let in_use: BTreeSet<String> = [vol("c").unique_name()].into();
        let p = plan(&desired, &current, &in_use);
        assert_eq!(p.create, [vol("b")]);
        assert_eq!(p.delete, ["va-d"]);
        assert_eq!(p.waiting, ["va-c"]);
        assert_eq!(p.attached, [vol("a").unique_name(), vol("c").unique_name()]);
        assert_eq!(vol("a").unique_name(), "kubernetes.io/csi/d^h-a");
        // Once the kubelet lets go, the attachment goes.
        let p = plan(&desired, &current, &BTreeSet::new());
        assert_eq!(p.delete, ["va-c", "va-d"]);
    }

    #[test]
    fn finished_pods_release_their_volumes() {
        let mut p = Pod::default();
        assert!(pod_needs_volumes(&p));
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(!pod_needs_volumes(&p));
        let mut deleted = Pod::default();
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert!(!pod_needs_volumes(&deleted));
    }
}
