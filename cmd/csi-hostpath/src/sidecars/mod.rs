//! The Kubernetes side of a CSI driver, which upstream keeps in sidecar projects: the
//! provisioner (kubernetes-csi/external-provisioner), the attacher
//! (kubernetes-csi/external-attacher) and the resizer (kubernetes-csi/external-resizer),
//! run in **node-deployment** mode: each node's
//! instance handles the claims the scheduler placed on its node and the volumes whose
//! topology is its node, which is what node-local volumes need. They talk to the driver
//! only over its CSI socket, as the sidecars do, and to the cluster only through the
//! apiserver.

pub mod attacher;
pub mod capacity;
pub mod provisioner;
pub mod resizer;

use client_go::events::Recorder;
use csi::v1 as api;
use k8s_openapi::api::core::v1::PersistentVolume;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often everything is looked at again, changes or not (failed operations retry).
pub const RESYNC: Duration = Duration::from_secs(10);
const RPC_TIMEOUT: Duration = Duration::from_secs(120);

/// What both roles share.
pub struct Context {
    pub client: kube::Client,
    /// The driver's name (GetPluginInfo).
    pub driver: String,
    /// This node's Node name.
    pub node: String,
    /// The driver's ID for this node (NodeGetInfo).
    pub node_id: String,
    /// This node's topology as the driver reports it (NodeGetInfo).
    pub topology: BTreeMap<String, String>,
    pub endpoint: String,
    pub recorder: Arc<Recorder>,
    /// One informer per kind for all the roles (each starts the ones it reads).
    pub informers: client_go::informer_factory::SharedInformerFactory,
}

impl Context {
    /// Asks the driver at `endpoint` who it is and where this node is.
    pub async fn new(client: kube::Client, endpoint: &str, node: &str) -> Result<Context, String> {
        let channel = component_base::grpc::unix_channel(endpoint, RPC_TIMEOUT)?;
        let info = api::identity_client::IdentityClient::new(channel.clone())
            .get_plugin_info(api::GetPluginInfoRequest {})
            .await
            .map_err(|e| format!("GetPluginInfo: {}", e.message()))?
            .into_inner();
        let node_info = api::node_client::NodeClient::new(channel)
            .node_get_info(api::NodeGetInfoRequest {})
            .await
            .map_err(|e| format!("NodeGetInfo: {}", e.message()))?
            .into_inner();
        let topology = node_info
            .accessible_topology
            .map(|t| t.segments.into_iter().collect())
            .unwrap_or_default();
        let recorder = Recorder::new(
            client.clone(),
            &info.name,
            &format!("{}_{node}", info.name),
            Arc::new(client_go::flowcontrol::RateLimiter::new(10.0, 20)),
        );
        Ok(Context {
            client: client.clone(),
            driver: info.name,
            node: node.to_string(),
            node_id: node_info.node_id,
            topology,
            endpoint: endpoint.to_string(),
            recorder,
            informers: client_go::informer_factory::SharedInformerFactory::new(client),
        })
    }

    /// The data of the secret `(namespace, name)` as the CSI calls carry it (none: empty).
    pub async fn secrets(
        &self,
        r: Option<(String, String)>,
    ) -> Result<BTreeMap<String, String>, String> {
        let Some((ns, name)) = r else {
            return Ok(BTreeMap::new());
        };
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(self.client.clone(), &ns);
        let s = api
            .get(&name)
            .await
            .map_err(|e| format!("error getting secret {name} in namespace {ns}: {e}"))?;
        Ok(s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect())
    }

    pub fn controller(
        &self,
    ) -> Result<api::controller_client::ControllerClient<tonic::transport::Channel>, String> {
        Ok(api::controller_client::ControllerClient::new(
            component_base::grpc::unix_channel(&self.endpoint, RPC_TIMEOUT)?,
        ))
    }
}

/// Adds or removes a finalizer on the current object (read fresh, written with its
/// resourceVersion, again on a conflict); a missing object has none to remove.
pub async fn set_finalizer<K>(
    api: &kube::Api<K>,
    name: &str,
    finalizer: &str,
    present: bool,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..5 {
        let Some(obj) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
            return if present {
                Err(format!("{name} not found"))
            } else {
                Ok(())
            };
        };
        let meta = obj.meta();
        let mut list = meta.finalizers.clone().unwrap_or_default();
        if list.iter().any(|f| f == finalizer) == present {
            return Ok(());
        }
        if present {
            list.push(finalizer.to_string());
        } else {
            list.retain(|f| f != finalizer);
        }
        let patch = serde_json::json!({"metadata": {"finalizers": list, "resourceVersion": meta.resource_version}});
        match api
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(kube::Error::Api(e)) if e.code == 404 && !present => return Ok(()),
            Err(e) => return Err(format!("updating the finalizers of {name}: {e}")),
        }
    }
    Err(format!(
        "updating the finalizers of {name}: conflicts kept coming"
    ))
}

/// A PersistentVolume's secret reference as `(namespace, name)`.
pub fn secret_of(
    r: Option<&k8s_openapi::api::core::v1::SecretReference>,
) -> Option<(String, String)> {
    let r = r?;
    Some((r.namespace.clone().unwrap_or_default(), r.name.clone()?))
}

/// The event reference of an object.
pub fn reference(
    o: &impl kube::Resource<DynamicType = ()>,
) -> k8s_openapi::api::core::v1::ObjectReference {
    o.object_ref(&())
}

/// Whether the volume's required node affinity admits a node with `topology` (a term
/// matches when each of its `In` expressions names the node's value for its key).
pub fn volume_on_node(pv: &PersistentVolume, topology: &BTreeMap<String, String>) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return false;
    };
    required.node_selector_terms.iter().any(|t| {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        !exprs.is_empty()
            && exprs.iter().all(|e| {
                e.operator == "In"
                    && topology
                        .get(&e.key)
                        .is_some_and(|v| e.values.iter().flatten().any(|x| x == v))
            })
    })
}

/// The claim's storage request in bytes.
pub fn requested_bytes(pvc: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> Option<i64> {
    let q = pvc
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    apimachinery::resource::Quantity::parse(&q.0).map(|q| q.value())
}

/// The CSI access mode for a Kubernetes one (the sidecars' mapping).
pub fn access_mode(mode: &str) -> api::volume_capability::access_mode::Mode {
    use api::volume_capability::access_mode::Mode;
    match mode {
        "ReadOnlyMany" => Mode::MultiNodeReaderOnly,
        "ReadWriteMany" => Mode::MultiNodeMultiWriter,
        "ReadWriteOncePod" => Mode::SingleNodeSingleWriter,
        _ => Mode::SingleNodeWriter,
    }
}

/// The volume capabilities a claim asks for: one per access mode, a filesystem of
/// `fs_type` or a raw block device.
pub fn capabilities(
    access_modes: &[String],
    block: bool,
    fs_type: &str,
) -> Vec<api::VolumeCapability> {
    use api::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
    let modes: Vec<&str> = if access_modes.is_empty() {
        vec!["ReadWriteOnce"]
    } else {
        access_modes.iter().map(String::as_str).collect()
    };
    modes
        .into_iter()
        .map(|m| api::VolumeCapability {
            access_mode: Some(AccessMode {
                mode: access_mode(m) as i32,
            }),
            access_type: Some(if block {
                AccessType::Block(BlockVolume {})
            } else {
                AccessType::Mount(MountVolume {
                    fs_type: fs_type.to_string(),
                    mount_flags: Vec::new(),
                    volume_mount_group: String::new(),
                })
            }),
        })
        .collect()
}

/// Runs `pass` whenever `wake` fires and at least every [`RESYNC`].
pub async fn run_loop<F, Fut>(wake: Arc<tokio::sync::Notify>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        pass().await;
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volumes_belong_to_the_node_their_affinity_names() {
        let pv: PersistentVolume = serde_json::from_value(json!({"spec": {"nodeAffinity": {"required": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.hostpath.csi/node", "operator": "In", "values": ["n1"]}]}]}}}}))
        .unwrap();
        let here = BTreeMap::from([("topology.hostpath.csi/node".to_string(), "n1".to_string())]);
        let there = BTreeMap::from([("topology.hostpath.csi/node".to_string(), "n2".to_string())]);
        assert!(volume_on_node(&pv, &here));
        assert!(!volume_on_node(&pv, &there));
        assert!(!volume_on_node(&PersistentVolume::default(), &here));
    }

    #[test]
    fn volume_secret_references_name_namespace_and_secret() {
        let r: k8s_openapi::api::core::v1::SecretReference =
            serde_json::from_value(json!({"name": "key", "namespace": "ns"})).unwrap();
        assert_eq!(secret_of(Some(&r)), Some(("ns".into(), "key".into())));
        assert_eq!(secret_of(None), None);
    }

    #[test]
    fn capabilities_follow_the_claim() {
        let caps = capabilities(
            &["ReadWriteOnce".into(), "ReadOnlyMany".into()],
            false,
            "xfs",
        );
        assert_eq!(caps.len(), 2);
        match &caps[0].access_type {
            Some(api::volume_capability::AccessType::Mount(m)) => assert_eq!(m.fs_type, "xfs"),
            other => panic!("{other:?}"),
        }
        let block = capabilities(&[], true, "");
        assert!(matches!(
            block[0].access_type,
            Some(api::volume_capability::AccessType::Block(_))
        ));
    }
}
