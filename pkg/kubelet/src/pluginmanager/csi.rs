//! Registering CSI drivers with the node: the driver's `pluginregistration` answer is
//! checked, its Node service asked for its node ID, volume limit and topology, and the
//! node publishes them — the `csi.volume.kubernetes.io/nodeid` annotation, the topology
//! labels and the driver's entry in the CSINode object. A driver whose socket goes away
//! is taken out again. Upstream twins: `pkg/volume/csi/csi_plugin.go`
//! (RegistrationHandler), `pkg/volume/csi/nodeinfomanager`.

use super::Registered;
use csi::pluginregistration::registration_client::RegistrationClient;
use csi::pluginregistration::{InfoRequest, RegistrationStatus};
use csi::v1::node_client::NodeClient;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::storage::v1::{CSINode, CSINodeDriver, CSINodeSpec, VolumeNodeResources};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The CSINode annotation listing the in-tree plugins whose volumes CSI drivers serve on
/// this node (upstream's `MigratedPluginsAnnotationKey`).
pub const MIGRATED_PLUGINS_ANNOTATION: &str = "storage.alpha.kubernetes.io/migrated-plugins";
/// The in-tree plugins migrated to CSI in v1.35 (every one still named; their in-tree
/// code is gone), sorted as upstream joins them.
pub const MIGRATED_PLUGINS: &str = "kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/azure-file,kubernetes.io/cinder,kubernetes.io/gce-pd,kubernetes.io/portworx-volume,kubernetes.io/vsphere-volume";

/// The annotation mapping each driver to this node's ID in it.
pub const NODE_ID_ANNOTATION: &str = "csi.volume.kubernetes.io/nodeid";
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// A registered driver, for the volume plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    /// The driver's socket (`unix://…`).
    pub endpoint: String,
    pub version: String,
}

pub struct Handler {
    client: kube::Client,
    node_name: String,
    /// Registered drivers by name.
    pub drivers: Mutex<BTreeMap<String, Driver>>,
}

/// The newest CSI version we speak that the plugin lists (`1.x.y`), else why not.
pub fn supported_version(versions: &[String]) -> Result<String, String> {
    versions
        .iter()
        .filter(|v| v.trim_start_matches('v').split('.').next() == Some("1"))
        .max_by_key(|v| {
            v.trim_start_matches('v')
                .split('.')
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .cloned()
        .ok_or_else(|| {
            format!(
                "none of the versions specified {versions:?} are supported. Supported versions are [\"1.0.0\"]"
            )
        })
}

/// The node ID annotation's JSON map with `driver` set to `node_id` (or removed); None
/// when no driver is left.
pub fn node_id_annotation(
    current: Option<&str>,
    driver: &str,
    node_id: Option<&str>,
) -> Option<String> {
    let mut map: BTreeMap<String, String> = current
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    match node_id {
        Some(id) => {
            map.insert(driver.to_string(), id.to_string());
        }
        None => {
            map.remove(driver);
        }
    }
    (!map.is_empty()).then(|| serde_json::to_string(&map).unwrap_or_default())
}

/// The CSINode's drivers with `driver` replacing the entry of its name (or that entry
/// removed when `driver` is None).
pub fn with_driver(
    current: &[CSINodeDriver],
    name: &str,
    driver: Option<CSINodeDriver>,
) -> Vec<CSINodeDriver> {
    let mut out: Vec<CSINodeDriver> = current.iter().filter(|d| d.name != name).cloned().collect();
    out.extend(driver);
    out
}

/// The CSINode entry for a driver: its node ID, topology keys (sorted) and volume limit.
pub fn driver_entry(
    name: &str,
    node_id: &str,
    topology: &BTreeMap<String, String>,
    max_volumes: i64,
) -> CSINodeDriver {
    CSINodeDriver {
        name: name.to_string(),
        node_id: node_id.to_string(),
        topology_keys: (!topology.is_empty()).then(|| topology.keys().cloned().collect()),
        allocatable: (max_volumes > 0).then_some(VolumeNodeResources {
            count: Some(max_volumes as i32),
        }),
    }
}

impl Handler {
    pub fn new(client: kube::Client, node_name: String) -> Handler {
        Handler {
            client,
            node_name,
            drivers: Mutex::new(BTreeMap::new()),
        }
    }

    /// The node's CSINode exists from the start, driverless (upstream's
    /// `InitializeCSINodeWithAnnotation`): the scheduler reads volume limits from it.
    /// Retried until the Node is registered.
    pub async fn initialize(&self) {
        loop {
            match self.update_csinode("", None).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = e, "CSINode not initialized yet"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Registers the plugin behind `socket`, telling it how that went.
    pub async fn register(&self, socket: &Path) -> Result<Registered, String> {
        let channel = component_base::grpc::unix_channel(
            &format!("unix://{}", socket.display()),
            RPC_TIMEOUT,
        )?;
        let mut reg = RegistrationClient::new(channel);
        let info = reg
            .get_info(InfoRequest {})
            .await
            .map_err(|e| format!("GetInfo: {}", e.message()))?
            .into_inner();
        let result = self.install(&info).await;
        let status = RegistrationStatus {
            plugin_registered: result.is_ok(),
            error: result.as_ref().err().cloned().unwrap_or_default(),
        };
        if let Err(e) = reg.notify_registration_status(status).await {
            tracing::warn!(
                plugin = info.name,
                error = e.message(),
                "NotifyRegistrationStatus failed"
            );
        }
        result?;
        tracing::info!(
            driver = info.name,
            endpoint = info.endpoint,
            "Register new plugin"
        );
        Ok(Registered {
            name: info.name,
            plugin_type: info.r#type,
        })
    }

    async fn install(&self, info: &csi::pluginregistration::PluginInfo) -> Result<(), String> {
        if info.r#type != csi::CSI_PLUGIN_TYPE {
            return Err(format!(
                "plugin type {:?} is not supported by this kubelet",
                info.r#type
            ));
        }
        if info.name.is_empty() {
            return Err("plugin name is empty".into());
        }
        let version = supported_version(&info.supported_versions)?;
        let endpoint = if info.endpoint.starts_with("unix://") {
            info.endpoint.clone()
        } else {
            format!("unix://{}", info.endpoint)
        };
        let channel = component_base::grpc::unix_channel(&endpoint, RPC_TIMEOUT)?;
        let node_info = NodeClient::new(channel)
            .node_get_info(csi::v1::NodeGetInfoRequest {})
            .await
            .map_err(|e| {
                format!(
                    "error getting node info from driver {}: {}",
                    info.name,
                    e.message()
                )
            })?
            .into_inner();
        if node_info.node_id.is_empty() {
            return Err(format!("driver {} reported an empty node ID", info.name));
        }
        let topology = node_info
            .accessible_topology
            .map(|t| t.segments.into_iter().collect::<BTreeMap<_, _>>())
            .unwrap_or_default();
        self.update_node(&info.name, Some(&node_info.node_id), &topology)
            .await?;
        let entry = driver_entry(
            &info.name,
            &node_info.node_id,
            &topology,
            node_info.max_volumes_per_node,
        );
        self.update_csinode(&info.name, Some(entry)).await?;
        self.drivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info.name.clone(), Driver { endpoint, version });
        Ok(())
    }

    /// Takes a driver whose socket is gone out of the node's CSINode and annotation.
    pub async fn deregister(&self, r: &Registered) {
        tracing::info!(driver = r.name, "DeRegisterPlugin");
        self.drivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.name);
        if r.plugin_type != csi::CSI_PLUGIN_TYPE {
            return;
        }
        if let Err(e) = self.update_csinode(&r.name, None).await {
            tracing::warn!(
                driver = r.name,
                error = e,
                "removing the driver from CSINode"
            );
        }
        if let Err(e) = self.update_node(&r.name, None, &BTreeMap::new()).await {
            tracing::warn!(driver = r.name, error = e, "removing the driver's node ID");
        }
    }

    /// The node ID annotation and, on install, the topology labels.
    async fn update_node(
        &self,
        driver: &str,
        node_id: Option<&str>,
        topology: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let node = api
            .get(&self.node_name)
            .await
            .map_err(|e| format!("getting node {}: {e}", self.node_name))?;
        let current = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NODE_ID_ANNOTATION))
            .map(String::as_str);
        let annotation = node_id_annotation(current, driver, node_id);
        let patch = serde_json::json!({"metadata": {
            "annotations": {NODE_ID_ANNOTATION: annotation},
            "labels": topology,
        }});
        api.patch(
            &self.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| format!("updating node {}: {e}", self.node_name))?;
        Ok(())
    }

    /// The CSINode (created, owned by the Node, when missing) with the driver's entry set
    /// or removed; a conflicting write is retried on a fresh read.
    async fn update_csinode(&self, name: &str, entry: Option<CSINodeDriver>) -> Result<(), String> {
        let api: Api<CSINode> = Api::all(self.client.clone());
        for _ in 0..5 {
            let existing = api
                .get_opt(&self.node_name)
                .await
                .map_err(|e| format!("getting CSINode {}: {e}", self.node_name))?;
            let result = match existing {
                None => {
                    let nodes: Api<Node> = Api::all(self.client.clone());
                    let node = nodes
                        .get(&self.node_name)
                        .await
                        .map_err(|e| format!("getting node {}: {e}", self.node_name))?;
                    let csinode = CSINode {
                        metadata: ObjectMeta {
                            name: Some(self.node_name.clone()),
                            annotations: Some(
                                [(
                                    MIGRATED_PLUGINS_ANNOTATION.to_string(),
                                    MIGRATED_PLUGINS.to_string(),
                                )]
                                .into(),
                            ),
                            owner_references: Some(vec![OwnerReference {
                                api_version: "v1".into(),
                                kind: "Node".into(),
                                name: self.node_name.clone(),
                                uid: node.metadata.uid.unwrap_or_default(),
                                ..Default::default()
                            }]),
                            ..Default::default()
                        },
                        spec: CSINodeSpec {
                            drivers: with_driver(&[], name, entry.clone()),
                        },
                    };
                    api.create(&PostParams::default(), &csinode)
                        .await
                        .map(|_| ())
                }
                Some(mut current) => {
                    let drivers = with_driver(&current.spec.drivers, name, entry.clone());
                    let annotations = current.metadata.annotations.get_or_insert_default();
                    let migrated = annotations
                        .get(MIGRATED_PLUGINS_ANNOTATION)
                        .map(String::as_str)
                        == Some(MIGRATED_PLUGINS);
                    if drivers == current.spec.drivers && migrated {
                        return Ok(());
                    }
                    annotations.insert(
                        MIGRATED_PLUGINS_ANNOTATION.to_string(),
                        MIGRATED_PLUGINS.to_string(),
                    );
                    current.spec.drivers = drivers;
                    api.replace(&self.node_name, &PostParams::default(), &current)
                        .await
                        .map(|_| ())
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(format!("updating CSINode {}: {e}", self.node_name)),
            }
        }
        Err(format!(
            "updating CSINode {}: conflicts kept coming",
            self.node_name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_the_newest_1x() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(supported_version(&v(&["0.3.0", "1.0.0"])).unwrap(), "1.0.0");
        assert_eq!(supported_version(&v(&["1.0.0", "1.2.0"])).unwrap(), "1.2.0");
        assert!(
            supported_version(&v(&["0.3.0"]))
                .unwrap_err()
                .contains("none of the versions")
        );
    }

    #[test]
    fn the_node_id_annotation_is_a_json_map() {
        let a = node_id_annotation(None, "b.csi", Some("n1")).unwrap();
        assert_eq!(a, r#"{"b.csi":"n1"}"#);
        let a = node_id_annotation(Some(&a), "a.csi", Some("x")).unwrap();
        assert_eq!(a, r#"{"a.csi":"x","b.csi":"n1"}"#);
        let a = node_id_annotation(Some(&a), "a.csi", None).unwrap();
        assert_eq!(a, r#"{"b.csi":"n1"}"#);
        assert_eq!(node_id_annotation(Some(&a), "b.csi", None), None);
    }

    #[test]
    fn csinode_entries_are_replaced_by_name() {
        let topo: BTreeMap<String, String> =
            [("zone".into(), "z1".into()), ("node".into(), "n1".into())].into();
        let d = driver_entry("d.csi", "n1", &topo, 0);
        assert_eq!(
            d.topology_keys,
            Some(vec!["node".to_string(), "zone".to_string()])
        );
        assert_eq!(d.allocatable, None);
        let other = driver_entry("o.csi", "n1", &BTreeMap::new(), 5);
        assert_eq!(other.allocatable.as_ref().and_then(|a| a.count), Some(5));
        assert_eq!(other.topology_keys, None);
        let both = with_driver(std::slice::from_ref(&other), "d.csi", Some(d.clone()));
        assert_eq!(both.len(), 2);
        let updated = with_driver(&both, "d.csi", Some(driver_entry("d.csi", "n2", &topo, 1)));
        assert_eq!(updated.len(), 2);
        assert_eq!(updated[1].node_id, "n2");
        assert_eq!(with_driver(&updated, "d.csi", None), vec![other]);
    }
}
