//! The CSI volume plugin: a pod's CSI volume is staged once per node
//! (`NodeStageVolume` at `plugins/kubernetes.io/csi/<driver>/<sha256(handle)>/globalmount`)
//! and published into each pod (`NodePublishVolume` at
//! `pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`), after the volume is attached
//! when the driver's CSIDriver asks for it. A `vol_data.json` beside every mount records
//! what the mount is, so unpublishing, unstaging and a restarted kubelet need nothing
//! else. The CSIDriver object decides attachment, the pod information and service
//! account tokens in the volume context, republishing, the lifecycle modes and whether
//! the kubelet applies `fsGroup`. Upstream twins: `pkg/volume/csi` (csi_attacher.go,
//! csi_mounter.go, expander.go, csi_metrics.go).

mod block;

pub use block::{block_publish_path, block_staging_path};

use crate::pluginmanager::csi::Handler;
use csi::names::sha256_hex;
use csi::v1 as api;
use csi::v1::node_client::NodeClient;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::storage::v1::{CSIDriver, VolumeAttachment};
use kube::Api;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The plugin's directory name under a pod's volumes.
pub const PLUGIN_DIR: &str = "kubernetes.io~csi";
const VOL_DATA: &str = "vol_data.json";
const RPC_TIMEOUT: Duration = Duration::from_secs(120);
/// Volume context keys the kubelet adds when the driver asks for pod information.
pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
pub const POD_UID: &str = "csi.storage.k8s.io/pod.uid";
pub const SERVICE_ACCOUNT: &str = "csi.storage.k8s.io/serviceAccount.name";
pub const EPHEMERAL: &str = "csi.storage.k8s.io/ephemeral";
pub const SERVICE_ACCOUNT_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// A CSI volume as the pod uses it: from a bound PersistentVolume or inline in the pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    pub driver: String,
    pub handle: String,
    /// The PersistentVolume's name, or the pod's volume name for an inline volume.
    pub spec_name: String,
    pub fs_type: String,
    pub read_only: bool,
    pub attributes: BTreeMap<String, String>,
    /// (namespace, name) of the secrets for staging and publishing.
    pub stage_secret: Option<(String, String)>,
    pub publish_secret: Option<(String, String)>,
    pub expand_secret: Option<(String, String)>,
    pub access_modes: Vec<String>,
    pub mount_options: Vec<String>,
    /// An inline (ephemeral) volume: published only, never staged or attached.
    pub ephemeral: bool,
    /// A raw block volume (`volumeMode: Block`).
    pub block: bool,
}

/// What a mount is, kept beside it (upstream's `vol_data.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VolData {
    #[serde(rename = "specVolID")]
    pub spec_vol_id: String,
    #[serde(rename = "volumeHandle")]
    pub volume_handle: String,
    #[serde(rename = "driverName")]
    pub driver_name: String,
    #[serde(rename = "nodeName")]
    pub node_name: String,
    #[serde(rename = "attachmentID", default)]
    pub attachment_id: String,
    #[serde(rename = "volumeLifecycleMode", default)]
    pub volume_lifecycle_mode: String,
}

/// What the driver's CSIDriver object asks of the kubelet (upstream's defaults when there
/// is none: attach, no pod information, fsGroup for ReadWriteOnce volumes with a
/// filesystem type, persistent volumes only).
#[derive(Clone, Debug, PartialEq)]
pub struct DriverPolicy {
    pub attach_required: bool,
    pub pod_info_on_mount: bool,
    pub fs_group_policy: String,
    pub lifecycle_modes: Vec<String>,
    pub requires_republish: bool,
    /// (audience, expirationSeconds) of the service account tokens to pass.
    pub token_requests: Vec<(String, i64)>,
}

impl Default for DriverPolicy {
    fn default() -> Self {
        DriverPolicy {
            attach_required: true,
            pod_info_on_mount: false,
            fs_group_policy: "ReadWriteOnceWithFSType".into(),
            lifecycle_modes: vec!["Persistent".into()],
            requires_republish: false,
            token_requests: Vec::new(),
        }
    }
}

impl DriverPolicy {
    pub fn from_object(d: &CSIDriver) -> DriverPolicy {
        let s = &d.spec;
        let def = DriverPolicy::default();
        DriverPolicy {
            attach_required: s.attach_required.unwrap_or(true),
            pod_info_on_mount: s.pod_info_on_mount.unwrap_or(false),
            fs_group_policy: s.fs_group_policy.clone().unwrap_or(def.fs_group_policy),
            lifecycle_modes: s
                .volume_lifecycle_modes
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or(def.lifecycle_modes),
            requires_republish: s.requires_republish.unwrap_or(false),
            token_requests: s
                .token_requests
                .iter()
                .flatten()
                .map(|t| (t.audience.clone(), t.expiration_seconds.unwrap_or(3600)))
                .collect(),
        }
    }
}

/// The node capabilities the plugin acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeCaps {
    pub stage: bool,
    pub expand: bool,
    pub stats: bool,
    pub single_node_multi_writer: bool,
}

/// Where a volume is staged on the node.
pub fn staging_path(root: &Path, driver: &str, handle: &str) -> PathBuf {
    root.join("plugins/kubernetes.io/csi")
        .join(driver)
        .join(sha256_hex(handle))
        .join("globalmount")
}

/// The directory of a pod's CSI volume (its `mount` and `vol_data.json`).
pub fn publish_dir(root: &Path, uid: &str, spec_name: &str) -> PathBuf {
    root.join("pods")
        .join(uid)
        .join("volumes")
        .join(PLUGIN_DIR)
        .join(spec_name)
}

/// The handle of an inline volume: one per pod and volume.
pub fn ephemeral_handle(pod_uid: &str, volume: &str) -> String {
    format!("csi-{}", sha256_hex(&format!("{pod_uid}{volume}")))
}

/// Whether the kubelet applies the pod's fsGroup to the volume itself
/// (upstream `supportsFSGroup`).
pub fn applies_fs_group(policy: &str, src: &Source) -> bool {
    match policy {
        "None" => false,
        "File" => true,
        _ => {
            !src.fs_type.is_empty()
                && (src.ephemeral
                    || (src.access_modes.len() == 1
                        && matches!(
                            src.access_modes[0].as_str(),
                            "ReadWriteOnce" | "ReadWriteOncePod"
                        )))
        }
    }
}

/// The CSI access mode of the volume's first access mode (upstream
/// `asCSIAccessModeV1`).
pub fn access_mode(modes: &[String], caps: NodeCaps) -> api::volume_capability::access_mode::Mode {
    use api::volume_capability::access_mode::Mode;
    match modes.first().map(String::as_str).unwrap_or("ReadWriteOnce") {
        "ReadOnlyMany" => Mode::MultiNodeReaderOnly,
        "ReadWriteMany" => Mode::MultiNodeMultiWriter,
        "ReadWriteOncePod" if caps.single_node_multi_writer => Mode::SingleNodeSingleWriter,
        "ReadWriteOnce" if caps.single_node_multi_writer => Mode::SingleNodeMultiWriter,
        _ => Mode::SingleNodeWriter,
    }
}

/// The volume context of a publish: the volume's attributes, and the pod's identity when
/// the driver asks for it.
pub fn publish_context(src: &Source, policy: &DriverPolicy, pod: &Pod) -> BTreeMap<String, String> {
    let mut ctx = src.attributes.clone();
    if policy.pod_info_on_mount {
        let m = &pod.metadata;
        ctx.insert(POD_NAME.into(), m.name.clone().unwrap_or_default());
        ctx.insert(
            POD_NAMESPACE.into(),
            m.namespace.clone().unwrap_or_default(),
        );
        ctx.insert(POD_UID.into(), m.uid.clone().unwrap_or_default());
        ctx.insert(
            SERVICE_ACCOUNT.into(),
            pod.spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
        );
    }
    if policy.pod_info_on_mount || src.ephemeral {
        ctx.insert(EPHEMERAL.into(), src.ephemeral.to_string());
    }
    ctx
}

fn capability(src: &Source, caps: NodeCaps) -> api::VolumeCapability {
    use api::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
    api::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: access_mode(&src.access_modes, caps) as i32,
        }),
        access_type: Some(if src.block {
            AccessType::Block(BlockVolume {})
        } else {
            AccessType::Mount(MountVolume {
                fs_type: src.fs_type.clone(),
                mount_flags: src.mount_options.clone(),
                volume_mount_group: String::new(),
            })
        }),
    }
}

/// Reads the `vol_data.json` in `dir`.
pub fn read_vol_data(dir: &Path) -> Option<VolData> {
    let raw = std::fs::read(dir.join(VOL_DATA)).ok()?;
    serde_json::from_slice(&raw).ok()
}

fn write_vol_data(dir: &Path, data: &VolData) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let raw = serde_json::to_vec(data).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(VOL_DATA), raw)
        .map_err(|e| format!("writing {}: {e}", dir.join(VOL_DATA).display()))
}

/// The CSI volumes published under the kubelet's pod directories: (pod uid, volume
/// directory, what it holds).
pub fn published(root: &Path) -> Vec<(String, PathBuf, VolData)> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(root.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let uid = pod.file_name().to_string_lossy().into_owned();
        let dir = pod.path().join("volumes").join(PLUGIN_DIR);
        for v in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Some(data) = read_vol_data(&v.path()) {
                out.push((uid.clone(), v.path(), data));
            }
        }
    }
    out
}

/// The volumes staged under the kubelet's plugin directory (what their
/// `vol_data.json` says).
pub fn staged(root: &Path) -> Vec<VolData> {
    let base = root.join("plugins/kubernetes.io/csi");
    std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|driver| {
            std::fs::read_dir(driver.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|v| read_vol_data(&v.path()))
        .collect()
}

/// A volume's name in node status (`kubernetes.io/csi/<driver>^<handle>`).
pub fn unique_name(data: &VolData) -> String {
    format!(
        "kubernetes.io/csi/{}^{}",
        data.driver_name, data.volume_handle
    )
}

/// A CSI call's failure as upstream's operation errors word it.
fn rpc_error(what: &str, spec: &str, e: &tonic::Status) -> String {
    format!(
        "{what} failed for volume {spec:?} : rpc error: code = {:?} desc = {}",
        e.code(),
        e.message()
    )
}

/// What staging and publishing one volume share.
struct NodeCall<'a> {
    client: NodeClient<tonic::transport::Channel>,
    src: &'a Source,
    publish_ctx: BTreeMap<String, String>,
    capability: api::VolumeCapability,
}

/// The CSI volume plugin of one kubelet.
pub struct Plugin {
    root: PathBuf,
    node_name: String,
    client: kube::Client,
    pub drivers: Arc<Handler>,
}

/// A volume's usage as the driver reports it (bytes, inodes) and its health.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeStats {
    pub capacity_bytes: i64,
    pub available_bytes: i64,
    pub used_bytes: i64,
    pub inodes: Option<(i64, i64, i64)>,
    pub abnormal: Option<(bool, String)>,
}

impl Plugin {
    pub fn new(
        root: PathBuf,
        node_name: String,
        client: kube::Client,
        drivers: Arc<Handler>,
    ) -> Self {
        Plugin {
            root,
            node_name,
            client,
            drivers,
        }
    }

    /// The persistent volumes staged or published on this node, by unique name, sorted.
    pub fn in_use(&self) -> Vec<String> {
        let mut out: Vec<String> = staged(&self.root)
            .into_iter()
            .chain(block::staged(&self.root))
            .chain(published(&self.root).into_iter().map(|(_, _, d)| d))
            .filter(|d| d.volume_lifecycle_mode != "Ephemeral")
            .map(|d| csi::names::unique_volume_name(&d.driver_name, &d.volume_handle))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn node_client(&self, driver: &str) -> Result<NodeClient<tonic::transport::Channel>, String> {
        let endpoint = self
            .drivers
            .drivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(driver)
            .map(|d| d.endpoint.clone())
            .ok_or_else(|| {
                format!("driver name {driver} not found in the list of registered CSI drivers")
            })?;
        Ok(NodeClient::new(component_base::grpc::unix_channel(
            &endpoint,
            RPC_TIMEOUT,
        )?))
    }

    fn vol_data(&self, src: &Source, attachment: &str, mode: &str) -> VolData {
        VolData {
            spec_vol_id: src.spec_name.clone(),
            volume_handle: src.handle.clone(),
            driver_name: src.driver.clone(),
            node_name: self.node_name.clone(),
            attachment_id: attachment.to_string(),
            volume_lifecycle_mode: mode.into(),
        }
    }

    /// `NodeStageVolume` at `staging` (made first).
    async fn node_stage(
        &self,
        call: &mut NodeCall<'_>,
        staging: &Path,
        what: &str,
    ) -> Result<(), String> {
        std::fs::create_dir_all(staging)
            .map_err(|e| format!("creating {}: {e}", staging.display()))?;
        let src = call.src;
        let secrets = self.secrets(&src.stage_secret).await?;
        call.client
            .node_stage_volume(api::NodeStageVolumeRequest {
                volume_id: src.handle.clone(),
                publish_context: call.publish_ctx.clone().into_iter().collect(),
                staging_target_path: staging.to_string_lossy().into_owned(),
                volume_capability: Some(call.capability.clone()),
                secrets: secrets.into_iter().collect(),
                volume_context: src.attributes.clone().into_iter().collect(),
            })
            .await
            .map(|_| ())
            .map_err(|e| rpc_error(what, &src.spec_name, &e))
    }

    /// `NodePublishVolume` at `target` with the volume context `ctx`.
    async fn node_publish(
        &self,
        call: &mut NodeCall<'_>,
        staging: Option<&Path>,
        target: &Path,
        ctx: BTreeMap<String, String>,
        what: &str,
    ) -> Result<(), String> {
        let src = call.src;
        let secrets = self.secrets(&src.publish_secret).await?;
        call.client
            .node_publish_volume(api::NodePublishVolumeRequest {
                volume_id: src.handle.clone(),
                publish_context: call.publish_ctx.clone().into_iter().collect(),
                staging_target_path: staging
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                target_path: target.to_string_lossy().into_owned(),
                volume_capability: Some(call.capability.clone()),
                readonly: src.read_only,
                secrets: secrets.into_iter().collect(),
                volume_context: ctx.into_iter().collect(),
            })
            .await
            .map(|_| ())
            .map_err(|e| rpc_error(what, &src.spec_name, &e))
    }

    async fn capabilities(
        &self,
        client: &mut NodeClient<tonic::transport::Channel>,
    ) -> Result<NodeCaps, String> {
        use api::node_service_capability::{Type, rpc};
        let caps = client
            .node_get_capabilities(api::NodeGetCapabilitiesRequest {})
            .await
            .map_err(|e| format!("NodeGetCapabilities: {}", e.message()))?
            .into_inner();
        let mut out = NodeCaps::default();
        for c in caps.capabilities {
            if let Some(Type::Rpc(r)) = c.r#type {
                match rpc::Type::try_from(r.r#type) {
                    Ok(rpc::Type::StageUnstageVolume) => out.stage = true,
                    Ok(rpc::Type::ExpandVolume) => out.expand = true,
                    Ok(rpc::Type::GetVolumeStats) => out.stats = true,
                    Ok(rpc::Type::SingleNodeMultiWriter) => out.single_node_multi_writer = true,
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// The driver's CSIDriver, or upstream's defaults when it has none.
    pub async fn policy(&self, driver: &str) -> Result<DriverPolicy, String> {
        let api: Api<CSIDriver> = Api::all(self.client.clone());
        match api.get_opt(driver).await {
            Ok(Some(d)) => Ok(DriverPolicy::from_object(&d)),
            Ok(None) => Ok(DriverPolicy::default()),
            Err(e) => Err(format!("getting CSIDriver {driver}: {e}")),
        }
    }

    async fn secrets(
        &self,
        r: &Option<(String, String)>,
    ) -> Result<BTreeMap<String, String>, String> {
        let Some((ns, name)) = r else {
            return Ok(BTreeMap::new());
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let s = api
            .get(name)
            .await
            .map_err(|e| format!("fetching secret {ns}/{name}: {e}"))?;
        Ok(s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect())
    }

    /// The attachment's publish context once the volume is attached to this node.
    async fn wait_for_attach(
        &self,
        src: &Source,
    ) -> Result<(String, BTreeMap<String, String>), String> {
        let name = csi::names::attachment_name(&src.handle, &src.driver, &self.node_name);
        let api: Api<VolumeAttachment> = Api::all(self.client.clone());
        let va = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("getting VolumeAttachment {name}: {e}"))?
            .ok_or_else(|| format!("volume attachment {name} is not found yet"))?;
        let status = va.status.unwrap_or_default();
        if !status.attached {
            let why = status
                .attach_error
                .and_then(|e| e.message)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(format!(
                "volume {} is not attached to node {} yet{why}",
                src.handle, self.node_name
            ));
        }
        Ok((name, status.attachment_metadata.unwrap_or_default()))
    }

    /// Stages (once per node) and publishes the volume into the pod; returns the path
    /// containers mount. Already published volumes are left alone (republished when the
    /// driver asks for it).
    pub async fn set_up(
        &self,
        pod: &Pod,
        src: &Source,
        fs_group: Option<i64>,
        fs_group_change_policy: Option<&str>,
        tokens: impl AsyncFnOnce(&[(String, i64)]) -> Result<BTreeMap<String, (String, String)>, String>,
    ) -> Result<PathBuf, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = publish_dir(&self.root, &uid, &src.spec_name);
        let target = dir.join("mount");
        let policy = self.policy(&src.driver).await?;
        let mounted = csi::mount::is_mounted(&target);
        if mounted && !policy.requires_republish {
            return Ok(target);
        }
        let mode = if src.ephemeral {
            "Ephemeral"
        } else {
            "Persistent"
        };
        if !policy.lifecycle_modes.iter().any(|m| m == mode) {
            return Err(format!(
                "volume mode {mode:?} not supported by driver {} (only supports {:?})",
                src.driver, policy.lifecycle_modes
            ));
        }
        let mut client = self.node_client(&src.driver)?;
        let caps = self.capabilities(&mut client).await?;
        let (attachment, publish_ctx) = if !src.ephemeral && policy.attach_required {
            self.wait_for_attach(src).await.map_err(|e| {
                format!(
                    "MountVolume.WaitForAttach failed for volume {:?}: {e}",
                    src.spec_name
                )
            })?
        } else {
            (String::new(), BTreeMap::new())
        };
        let mut call = NodeCall {
            client,
            src,
            publish_ctx,
            capability: capability(src, caps),
        };
        let staging = staging_path(&self.root, &src.driver, &src.handle);
        let staged = !src.ephemeral && caps.stage;
        if staged && !csi::mount::is_mounted(&staging) {
            let data = self.vol_data(src, &attachment, mode);
            write_vol_data(staging.parent().unwrap_or(&staging), &data)?;
            self.node_stage(&mut call, &staging, "MountVolume.MountDevice")
                .await?;
        }
        write_vol_data(&dir, &self.vol_data(src, &attachment, mode))?;
        let mut ctx = publish_context(src, &policy, pod);
        if !policy.token_requests.is_empty() {
            let tokens: BTreeMap<String, serde_json::Value> = tokens(&policy.token_requests)
                .await?
                .into_iter()
                .map(|(aud, (token, exp))| {
                    (
                        aud,
                        serde_json::json!({"token": token, "expirationTimestamp": exp}),
                    )
                })
                .collect();
            ctx.insert(
                SERVICE_ACCOUNT_TOKENS.into(),
                serde_json::to_string(&tokens).unwrap_or_default(),
            );
        }
        self.node_publish(
            &mut call,
            staged.then_some(staging.as_path()),
            &target,
            ctx,
            "MountVolume.SetUp",
        )
        .await?;
        if !mounted
            && let Some(group) = fs_group
            && !src.read_only
            && applies_fs_group(&policy.fs_group_policy, src)
        {
            crate::volume_ownership::set(&target, group, false, fs_group_change_policy)
                .map_err(|e| format!("volume {:?}: setting fsGroup: {e}", src.spec_name))?;
        }
        Ok(target)
    }

    /// Unpublishes every CSI volume of the pod, and unstages those no other pod uses.
    /// Reads only what is on disk, so it also cleans up after a restart.
    pub async fn tear_down_pod(&self, uid: &str) -> Result<(), String> {
        let base = self
            .root
            .join("pods")
            .join(uid)
            .join("volumes")
            .join(PLUGIN_DIR);
        for v in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let dir = v.path();
            let target = dir.join("mount");
            let Some(data) = read_vol_data(&dir) else {
                if csi::mount::is_mounted(&target) {
                    return Err(format!(
                        "{} is mounted but has no {VOL_DATA}",
                        target.display()
                    ));
                }
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            };
            self.unpublish(&data, &target, "UnmountVolume.TearDown")
                .await?;
            let _ = std::fs::remove_dir_all(&dir);
            if data.volume_lifecycle_mode != "Ephemeral" {
                let others = published(&self.root).into_iter().any(|(_, _, d)| {
                    d.driver_name == data.driver_name && d.volume_handle == data.volume_handle
                });
                if !others {
                    self.unstage(&data).await?;
                }
            }
        }
        Ok(())
    }

    /// `NodeUnpublishVolume` of `target`, which must then be unmounted.
    async fn unpublish(&self, data: &VolData, target: &Path, what: &str) -> Result<(), String> {
        let mut client = self.node_client(&data.driver_name)?;
        client
            .node_unpublish_volume(api::NodeUnpublishVolumeRequest {
                volume_id: data.volume_handle.clone(),
                target_path: target.to_string_lossy().into_owned(),
            })
            .await
            .map_err(|e| rpc_error(what, &data.spec_vol_id, &e))?;
        if csi::mount::is_mounted(target) {
            return Err(format!(
                "{what} failed for volume {:?}: {} is still mounted",
                data.spec_vol_id,
                target.display()
            ));
        }
        tracing::info!(volume = data.spec_vol_id, target = %target.display(), "{what} succeeded");
        Ok(())
    }

    /// `NodeUnstageVolume` of `staging` (when the driver stages), which must then be
    /// unmounted.
    async fn unstage_at(&self, data: &VolData, staging: &Path, what: &str) -> Result<(), String> {
        let mut client = self.node_client(&data.driver_name)?;
        let caps = self.capabilities(&mut client).await?;
        if caps.stage {
            client
                .node_unstage_volume(api::NodeUnstageVolumeRequest {
                    volume_id: data.volume_handle.clone(),
                    staging_target_path: staging.to_string_lossy().into_owned(),
                })
                .await
                .map_err(|e| rpc_error(what, &data.spec_vol_id, &e))?;
        }
        if csi::mount::is_mounted(staging) {
            return Err(format!(
                "{what} failed for volume {:?}: {} is still mounted",
                data.spec_vol_id,
                staging.display()
            ));
        }
        tracing::info!(volume = data.spec_vol_id, "{what} succeeded");
        Ok(())
    }

    async fn unstage(&self, data: &VolData) -> Result<(), String> {
        let staging = staging_path(&self.root, &data.driver_name, &data.volume_handle);
        let Some(dir) = staging.parent().filter(|d| d.exists()) else {
            return Ok(());
        };
        self.unstage_at(data, &staging, "UnmountDevice").await?;
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }

    /// Grows the published volume's filesystem to `capacity` bytes on the node
    /// (`NodeExpandVolume`); false when the driver has nothing to do on nodes.
    pub async fn expand(&self, uid: &str, src: &Source, capacity: i64) -> Result<bool, String> {
        let mut client = self.node_client(&src.driver)?;
        let caps = self.capabilities(&mut client).await?;
        if !caps.expand {
            return Ok(false);
        }
        let target = publish_dir(&self.root, uid, &src.spec_name).join("mount");
        let staging = staging_path(&self.root, &src.driver, &src.handle);
        let secrets = self.secrets(&src.expand_secret).await?;
        client
            .node_expand_volume(api::NodeExpandVolumeRequest {
                volume_id: src.handle.clone(),
                volume_path: target.to_string_lossy().into_owned(),
                capacity_range: Some(api::CapacityRange {
                    required_bytes: capacity,
                    limit_bytes: 0,
                }),
                staging_target_path: if caps.stage {
                    staging.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
                volume_capability: Some(capability(src, caps)),
                secrets: secrets.into_iter().collect(),
            })
            .await
            .map_err(|e| rpc_error("MountVolume.NodeExpandVolume", &src.spec_name, &e))?;
        Ok(true)
    }

    /// The driver's usage figures for a published volume; None when the driver does not
    /// report them.
    pub async fn stats(
        &self,
        data: &VolData,
        target: &Path,
    ) -> Result<Option<VolumeStats>, String> {
        let mut client = self.node_client(&data.driver_name)?;
        let caps = self.capabilities(&mut client).await?;
        if !caps.stats {
            return Ok(None);
        }
        let staging = staging_path(&self.root, &data.driver_name, &data.volume_handle);
        let r = client
            .node_get_volume_stats(api::NodeGetVolumeStatsRequest {
                volume_id: data.volume_handle.clone(),
                volume_path: target.to_string_lossy().into_owned(),
                staging_target_path: if caps.stage {
                    staging.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
            })
            .await
            .map_err(|e| format!("NodeGetVolumeStats: {}", e.message()))?
            .into_inner();
        let mut out = VolumeStats::default();
        for u in r.usage {
            match api::volume_usage::Unit::try_from(u.unit) {
                Ok(api::volume_usage::Unit::Bytes) => {
                    out.capacity_bytes = u.total;
                    out.available_bytes = u.available;
                    out.used_bytes = u.used;
                }
                Ok(api::volume_usage::Unit::Inodes) => {
                    out.inodes = Some((u.total, u.available, u.used));
                }
                _ => {}
            }
        }
        out.abnormal = r.volume_condition.map(|c| (c.abnormal, c.message));
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(modes: &[&str], fs: &str) -> Source {
        Source {
            fs_type: fs.into(),
            access_modes: modes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn paths_follow_upstream_layout() {
        let root = Path::new("/var/lib/kubelet");
        assert_eq!(
            staging_path(root, "hostpath.csi.k8s.io", "vol-1"),
            PathBuf::from(format!(
                "/var/lib/kubelet/plugins/kubernetes.io/csi/hostpath.csi.k8s.io/{}/globalmount",
                sha256_hex("vol-1")
            ))
        );
        assert_eq!(
            publish_dir(root, "u1", "pvc-1"),
            PathBuf::from("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc-1")
        );
    }

    #[test]
    fn fs_group_follows_the_driver_policy() {
        let rwo = src(&["ReadWriteOnce"], "ext4");
        assert!(applies_fs_group("ReadWriteOnceWithFSType", &rwo));
        assert!(!applies_fs_group("None", &rwo));
        assert!(!applies_fs_group(
            "ReadWriteOnceWithFSType",
            &src(&["ReadWriteOnce"], "")
        ));
        assert!(!applies_fs_group(
            "ReadWriteOnceWithFSType",
            &src(&["ReadWriteMany"], "ext4")
        ));
        assert!(!applies_fs_group(
            "ReadWriteOnceWithFSType",
            &src(&["ReadWriteOnce", "ReadOnlyMany"], "ext4")
        ));
        assert!(applies_fs_group("File", &src(&["ReadWriteMany"], "")));
    }

    #[test]
    fn access_modes_map_to_csi() {
        use api::volume_capability::access_mode::Mode;
        let none = NodeCaps::default();
        let multi = NodeCaps {
            single_node_multi_writer: true,
            ..Default::default()
        };
        let m = |s: &str| vec![s.to_string()];
        assert_eq!(
            access_mode(&m("ReadWriteOnce"), none),
            Mode::SingleNodeWriter
        );
        assert_eq!(
            access_mode(&m("ReadWriteOnce"), multi),
            Mode::SingleNodeMultiWriter
        );
        assert_eq!(
            access_mode(&m("ReadWriteOncePod"), multi),
            Mode::SingleNodeSingleWriter
        );
        assert_eq!(
            access_mode(&m("ReadOnlyMany"), none),
            Mode::MultiNodeReaderOnly
        );
        assert_eq!(
            access_mode(&m("ReadWriteMany"), none),
            Mode::MultiNodeMultiWriter
        );
        assert_eq!(access_mode(&[], none), Mode::SingleNodeWriter);
    }

    #[test]
    fn pod_information_goes_into_the_context_when_asked() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.uid = Some("u".into());
        let mut s = src(&["ReadWriteOnce"], "ext4");
        s.attributes.insert("a".into(), "b".into());
        let plain = publish_context(&s, &DriverPolicy::default(), &pod);
        assert_eq!(plain.len(), 1);
        let policy = DriverPolicy {
            pod_info_on_mount: true,
            ..Default::default()
        };
        let ctx = publish_context(&s, &policy, &pod);
        assert_eq!(ctx[POD_NAME], "p");
        assert_eq!(ctx[POD_NAMESPACE], "ns");
        assert_eq!(ctx[POD_UID], "u");
        assert_eq!(ctx[SERVICE_ACCOUNT], "default");
        assert_eq!(ctx[EPHEMERAL], "false");
        s.ephemeral = true;
        assert_eq!(
            publish_context(&s, &DriverPolicy::default(), &pod)[EPHEMERAL],
            "true"
        );
    }

    #[test]
    fn vol_data_uses_upstream_keys() {
        let d = VolData {
            spec_vol_id: "pvc-1".into(),
            volume_handle: "h".into(),
            driver_name: "d".into(),
            node_name: "n".into(),
            attachment_id: String::new(),
            volume_lifecycle_mode: "Persistent".into(),
        };
        let v = serde_json::to_value(&d).unwrap();
        for k in [
            "specVolID",
            "volumeHandle",
            "driverName",
            "nodeName",
            "attachmentID",
            "volumeLifecycleMode",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
