//! Storage capacity (external-provisioner's `--enable-capacity`, node-deployment mode):
//! every `--capacity-poll-interval`, and when a class changes, the driver is asked
//! `GetCapacity` for each StorageClass it provisions, with this node's topology, and the
//! answer kept in one CSIStorageCapacity per class in the `NAMESPACE` the provisioner
//! runs in (labelled `csi.storage.k8s.io/drivername` and
//! `csi.storage.k8s.io/managed-by: external-provisioner-<node>`), which the scheduler
//! reads when the CSIDriver sets `storageCapacity`. Objects of classes gone are deleted.

use super::{Context, capabilities, provisioner::split_parameters};
use apimachinery::resource::Quantity;
use client_go::informer::Informer;
use csi::v1 as api;
use k8s_openapi::api::storage::v1::{CSIStorageCapacity, StorageClass};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const DRIVER_LABEL: &str = "csi.storage.k8s.io/drivername";
pub const MANAGED_BY_LABEL: &str = "csi.storage.k8s.io/managed-by";

/// The `managed-by` label of a node's provisioner.
pub fn managed_by(node: &str) -> String {
    format!("external-provisioner-{node}")
}

/// The CSIStorageCapacity for a class on this node's topology.
pub fn capacity_object(
    driver: &str,
    node: &str,
    class: &str,
    topology: &BTreeMap<String, String>,
    available: i64,
    maximum: i64,
) -> CSIStorageCapacity {
    let mut v = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIStorageCapacity",
        "metadata": {
            "generateName": "csisc-",
            "labels": {DRIVER_LABEL: driver, MANAGED_BY_LABEL: managed_by(node)},
        },
        "storageClassName": class,
        "nodeTopology": {"matchLabels": topology},
        "capacity": Quantity::binary(available).to_string(),
    });
    if maximum > 0 {
        v["maximumVolumeSize"] = json!(Quantity::binary(maximum).to_string());
    }
    serde_json::from_value(v).unwrap_or_default()
}

pub struct CapacityPublisher {
    ctx: Arc<Context>,
    namespace: String,
    classes: Arc<Informer<StorageClass>>,
}

impl CapacityPublisher {
    pub fn start(ctx: Arc<Context>, namespace: String, poll: Duration) {
        let classes = ctx.informers.get::<StorageClass>();
        let wake = Arc::new(tokio::sync::Notify::new());
        let w = wake.clone();
        classes.add_handler(move |_, _| w.notify_one());
        classes.run();
        let c = Arc::new(CapacityPublisher {
            ctx,
            namespace,
            classes,
        });
        tokio::spawn(async move {
            c.classes.synced().await;
            tracing::info!(namespace = c.namespace, "capacity publisher started");
            loop {
                if let Err(e) = c.pass().await {
                    tracing::warn!(error = e, "publishing capacity");
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    async fn pass(&self) -> Result<(), String> {
        let api: Api<CSIStorageCapacity> =
            Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let selector = format!(
            "{DRIVER_LABEL}={},{MANAGED_BY_LABEL}={}",
            self.ctx.driver,
            managed_by(&self.ctx.node)
        );
        let existing = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?
            .items;
        let classes: Vec<Arc<StorageClass>> = self
            .classes
            .store
            .state()
            .into_iter()
            .filter(|c| c.provisioner == self.ctx.driver)
            .collect();
        for class in &classes {
            let name = class.metadata.name.clone().unwrap_or_default();
            let (params, reserved) =
                split_parameters(&class.parameters.clone().unwrap_or_default())?;
            let fs_type = reserved.get("fstype").cloned().unwrap_or_default();
            let resp = self
                .ctx
                .controller()?
                .get_capacity(api::GetCapacityRequest {
                    volume_capabilities: capabilities(&[], false, &fs_type),
                    parameters: params.into_iter().collect(),
                    accessible_topology: Some(api::Topology {
                        segments: self.ctx.topology.clone().into_iter().collect(),
                    }),
                })
                .await
                .map_err(|e| format!("GetCapacity for class {name}: {}", e.message()))?
                .into_inner();
            let maximum = resp.maximum_volume_size.unwrap_or_default();
            let want = capacity_object(
                &self.ctx.driver,
                &self.ctx.node,
                &name,
                &self.ctx.topology,
                resp.available_capacity,
                maximum,
            );
            match existing.iter().find(|c| c.storage_class_name == name) {
                Some(current)
                    if current.capacity == want.capacity
                        && current.maximum_volume_size == want.maximum_volume_size => {}
                Some(current) => {
                    let mut next = current.clone();
                    next.capacity = want.capacity.clone();
                    next.maximum_volume_size = want.maximum_volume_size.clone();
                    api.replace(
                        current.metadata.name.as_deref().unwrap_or_default(),
                        &PostParams::default(),
                        &next,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
                None => {
                    api.create(&PostParams::default(), &want)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        for stale in existing.iter().filter(|c| {
            !classes
                .iter()
                .any(|k| k.metadata.name.as_deref() == Some(c.storage_class_name.as_str()))
        }) {
            let _ = api
                .delete(
                    stale.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_objects_name_the_class_and_the_node_topology() {
        let topology =
            BTreeMap::from([("topology.hostpath.csi/node".to_string(), "n1".to_string())]);
        let c = capacity_object("d", "n1", "fast", &topology, 10 << 30, 0);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["storageClassName"], "fast");
        assert_eq!(v["capacity"], "10Gi");
        assert!(v.get("maximumVolumeSize").is_none());
        assert_eq!(
            v["nodeTopology"]["matchLabels"]["topology.hostpath.csi/node"],
            "n1"
        );
        assert_eq!(
            v["metadata"]["labels"][MANAGED_BY_LABEL],
            "external-provisioner-n1"
        );
        assert_eq!(v["metadata"]["generateName"], "csisc-");
    }
}
