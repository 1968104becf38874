//! Pod volumes (upstream `pkg/kubelet/volumemanager` and `pkg/volume/*`): each volume is
//! set up under `<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>` before the
//! containers start and refreshed on every sync; configMap, secret, downwardAPI and
//! projected volumes are written atomically (upstream's AtomicWriter: a timestamped
//! directory, the `..data` symlink swapped by rename, and per-key symlinks through it).
//! Service-account tokens come from the TokenRequest API, bound to the pod, and are
//! renewed at 80% of their lifetime or after 24 h.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
    Volume,
};
use kube::Api;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Mode of files written without an explicit one.
const DEFAULT_MODE: u32 = 0o644;

pub struct VolumeManager {
    pub root: PathBuf,
    client: kube::Client,
    /// The CSI volume plugin.
    pub csi: crate::volume::csi::Plugin,
    /// Pod uid -> its volumes' usage, as last gathered.
    pub stats: Mutex<HashMap<String, Vec<crate::volume::stats::PodVolumeStats>>>,
    /// (pod uid, volume, path) -> (token, when to renew, when it expires).
    tokens: Mutex<HashMap<TokenKey, (String, Instant, String)>>,
}

/// (pod uid, volume, path) of a projected token.
type TokenKey = (String, String, String);

/// What a container mounts: volume name -> host path.
pub type Mounts = HashMap<String, PathBuf>;

fn plugin_of(v: &Volume) -> &'static str {
    if v.empty_dir.is_some() {
        "empty-dir"
    } else if v.config_map.is_some() {
        "configmap"
    } else if v.secret.is_some() {
        "secret"
    } else if v.downward_api.is_some() {
        "downward-api"
    } else if v.projected.is_some() {
        "projected"
    } else {
        "other"
    }
}

impl VolumeManager {
    pub fn new(root: PathBuf, client: kube::Client, csi: crate::volume::csi::Plugin) -> Self {
        VolumeManager {
            root,
            client,
            csi,
            stats: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// Sets up (or refreshes) every volume of the pod.
    /// `allocatable`: the node's, the limit a `resourceFieldRef` reads when the container
    /// sets none.
    pub async fn setup(
        &self,
        pod: &Pod,
        pod_ip: &str,
        host_ip: &str,
        allocatable: &BTreeMap<String, String>,
    ) -> Result<Mounts, String> {
        let spec = pod.spec.clone().unwrap_or_default();
        // A downwardAPI item: a pod field or a container's resource.
        let downward = |f: Option<&k8s_openapi::api::core::v1::ObjectFieldSelector>,
                        r: Option<&k8s_openapi::api::core::v1::ResourceFieldSelector>|
         -> Result<Option<String>, String> {
            match (f, r) {
                (Some(f), _) => Ok(Some(crate::kuberuntime::env::field_value(
                    pod,
                    &f.field_path,
                    pod_ip,
                    host_ip,
                )?)),
                (None, Some(r)) => Ok(Some(crate::kuberuntime::env::resource_field_value(
                    &spec,
                    None,
                    r,
                    allocatable,
                )?)),
                (None, None) => Ok(None),
            }
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let psc = spec.security_context.clone().unwrap_or_default();
        let fs_group = psc.fs_group;
        let fs_group_policy = psc.fs_group_change_policy.as_deref();
        let mut mounts = Mounts::new();
        // CSI volumes of claims, for expansion on the node once all are mounted.
        let mut expansions = Vec::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            // The volumes that take the pod's fsGroup (upstream: their plugins support
            // it): an emptyDir when it is made, the projections on every refresh.
            let mut ownership: Option<bool> = None;
            let dir = self
                .pod_dir(&uid)
                .join("volumes")
                .join(format!("kubernetes.io~{}", plugin_of(v)))
                .join(&v.name);
            let path = if let Some(h) = &v.host_path {
                host_path(&h.path, h.type_.as_deref().unwrap_or(""))?;
                PathBuf::from(&h.path)
            } else if let Some(e) = &v.empty_dir {
                if !dir.exists() {
                    mkdir(&dir)?;
                    if e.medium.as_deref() == Some("Memory") {
                        let mut cmd = std::process::Command::new("mount");
                        cmd.args(["-t", "tmpfs", "tmpfs"]);
                        if let Some(l) = &e.size_limit {
                            cmd.args([
                                "-o",
                                &format!("size={}", crate::nodestatus::quantity_bytes(&l.0)),
                            ]);
                        }
                        let out = cmd
                            .arg(&dir)
                            .output()
                            .map_err(|e| format!("mount tmpfs: {e}"))?;
                        if !out.status.success() {
                            return Err(format!(
                                "mount tmpfs on {}: {}",
                                dir.display(),
                                String::from_utf8_lossy(&out.stderr).trim()
                            ));
                        }
                    }
                    // World-writable whatever the umask, as upstream's emptyDir, so
                    // containers running as any user can write to it.
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
                    ownership = Some(false);
                }
                dir
            } else if let Some(cm) = &v.config_map {
                let files = self
                    .config_map_files(
                        &ns,
                        &cm.name,
                        cm.items.as_deref(),
                        cm.optional,
                        cm.default_mode,
                    )
                    .await?;
                atomic_write(&dir, &files)?;
                dir
            } else if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                let files = self
                    .secret_files(&ns, &name, s.items.as_deref(), s.optional, s.default_mode)
                    .await?;
                atomic_write(&dir, &files)?;
                dir
            } else if let Some(d) = &v.downward_api {
                let mut files = BTreeMap::new();
                for item in d.items.iter().flatten() {
                    let value =
                        downward(item.field_ref.as_ref(), item.resource_field_ref.as_ref())?
                            .unwrap_or_default();
                    files.insert(
                        item.path.clone(),
                        (value.into_bytes(), item.mode.or(d.default_mode)),
                    );
                }
                atomic_write(&dir, &files)?;
                dir
            } else if let Some(p) = &v.projected {
                let mut files = BTreeMap::new();
                for src in p.sources.iter().flatten() {
                    if let Some(cm) = &src.config_map {
                        files.extend(
                            self.config_map_files(
                                &ns,
                                &cm.name,
                                cm.items.as_deref(),
                                cm.optional,
                                p.default_mode,
                            )
                            .await?,
                        );
                    }
                    if let Some(s) = &src.secret {
                        files.extend(
                            self.secret_files(
                                &ns,
                                &s.name,
                                s.items.as_deref(),
                                s.optional,
                                p.default_mode,
                            )
                            .await?,
                        );
                    }
                    if let Some(d) = &src.downward_api {
                        for item in d.items.iter().flatten() {
                            if let Some(value) =
                                downward(item.field_ref.as_ref(), item.resource_field_ref.as_ref())?
                            {
                                files.insert(
                                    item.path.clone(),
                                    (value.into_bytes(), item.mode.or(p.default_mode)),
                                );
                            }
                        }
                    }
                    if let Some(t) = &src.service_account_token {
                        let (token, _) = self
                            .token(
                                pod,
                                &v.name,
                                &t.path,
                                t.audience.clone(),
                                t.expiration_seconds.unwrap_or(3600),
                            )
                            .await?;
                        files.insert(
                            t.path.clone(),
                            (token.into_bytes(), Some(p.default_mode.unwrap_or(0o644))),
                        );
                    }
                }
                atomic_write(&dir, &files)?;
                dir
            } else if let Some(pvc) = &v.persistent_volume_claim {
                let read_only = pvc.read_only == Some(true);
                let (path, takes_group, expansion) = self
                    .mount_claim(
                        pod,
                        v,
                        &pvc.claim_name,
                        read_only,
                        fs_group,
                        fs_group_policy,
                    )
                    .await?;
                ownership = ownership.or(takes_group);
                expansions.extend(expansion);
                path
            } else if v.ephemeral.is_some() {
                let claim = format!(
                    "{}-{}",
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    v.name
                );
                let (path, takes_group, expansion) = self
                    .mount_claim(pod, v, &claim, false, fs_group, fs_group_policy)
                    .await?;
                ownership = ownership.or(takes_group);
                expansions.extend(expansion);
                path
            } else if let Some(c) = &v.csi {
                let src = crate::volume::csi::Source {
                    driver: c.driver.clone(),
                    handle: crate::volume::csi::ephemeral_handle(&uid, &v.name),
                    spec_name: v.name.clone(),
                    fs_type: c.fs_type.clone().unwrap_or_default(),
                    read_only: c.read_only.unwrap_or(false),
                    attributes: c.volume_attributes.clone().unwrap_or_default(),
                    publish_secret: c
                        .node_publish_secret_ref
                        .as_ref()
                        .map(|r| (ns.clone(), r.name.clone())),
                    ephemeral: true,
                    ..Default::default()
                };
                self.csi_set_up(pod, v, &src, fs_group, fs_group_policy)
                    .await?
            } else {
                return Err(format!("volume {:?}: unsupported volume type", v.name));
            };
            if v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || v.projected.is_some()
            {
                ownership = Some(true);
            }
            if let (Some(readonly), Some(group)) = (ownership, fs_group) {
                crate::volume_ownership::set(&path, group, readonly, fs_group_policy)
                    .map_err(|e| format!("volume {:?}: setting fsGroup: {e}", v.name))?;
            }
            mounts.insert(v.name.clone(), path);
        }
        for (src, claim, pv) in expansions {
            self.expand_on_node(pod, &src, &claim, &pv).await?;
        }
        Ok(mounts)
    }

    /// The claim's volume on this node: a path (and whether it is a local volume), or a
    /// CSI volume with its claim and PersistentVolume.
    async fn claim_volume(&self, ns: &str, claim: &str) -> Result<Claimed, String> {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        let pvc = pvcs
            .get_opt(claim)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("persistentvolumeclaim \"{claim}\" not found"))?;
        let pv_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("PVC {ns}/{claim} has not been bound"))?;
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let pv = pvs.get(&pv_name).await.map_err(|e| e.to_string())?;
        let spec = pv.spec.clone().unwrap_or_default();
        if let Some(h) = spec.host_path {
            host_path(&h.path, h.type_.as_deref().unwrap_or(""))?;
            Ok(Claimed::Path(PathBuf::from(h.path), false))
        } else if let Some(l) = spec.local {
            Ok(Claimed::Path(PathBuf::from(l.path), true))
        } else if let Some(c) = spec.csi {
            let secret = |r: &Option<k8s_openapi::api::core::v1::SecretReference>| {
                r.as_ref().map(|r| {
                    (
                        r.namespace.clone().unwrap_or_else(|| ns.to_string()),
                        r.name.clone().unwrap_or_default(),
                    )
                })
            };
            let src = crate::volume::csi::Source {
                driver: c.driver.clone(),
                handle: c.volume_handle.clone(),
                spec_name: pv_name.clone(),
                fs_type: c.fs_type.clone().unwrap_or_default(),
                read_only: c.read_only.unwrap_or(false),
                attributes: c.volume_attributes.clone().unwrap_or_default(),
                stage_secret: secret(&c.node_stage_secret_ref),
                publish_secret: secret(&c.node_publish_secret_ref),
                expand_secret: secret(&c.node_expand_secret_ref),
                access_modes: spec.access_modes.clone().unwrap_or_default(),
                mount_options: spec.mount_options.clone().unwrap_or_default(),
                ephemeral: false,
                block: spec.volume_mode.as_deref() == Some("Block"),
            };
            Ok(Claimed::Csi(Box::new(src), Box::new(pvc), Box::new(pv)))
        } else {
            Err(format!(
                "persistentvolume {pv_name:?}: only hostPath, local and CSI volumes are supported"
            ))
        }
    }

    /// Mounts a claim's volume (a `persistentVolumeClaim` or generic ephemeral volume):
    /// its path; `Some(false)` when the kubelet applies the pod's fsGroup to it (a local
    /// volume not mounted read-only, as upstream's local plugin; hostPath never); and a
    /// CSI filesystem volume to finish expanding once every volume is mounted.
    async fn mount_claim(
        &self,
        pod: &Pod,
        v: &Volume,
        claim: &str,
        read_only: bool,
        fs_group: Option<i64>,
        fs_group_policy: Option<&str>,
    ) -> Result<(PathBuf, Option<bool>, Option<Expansion>), String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match self.claim_volume(&ns, claim).await? {
            Claimed::Path(path, local) => Ok((path, (local && !read_only).then_some(false), None)),
            Claimed::Csi(mut src, claim, pv) => {
                src.read_only |= read_only;
                if src.block {
                    return Ok((self.csi.set_up_block(&uid, &src).await?, None, None));
                }
                let path = self
                    .csi_set_up(pod, v, &src, fs_group, fs_group_policy)
                    .await?;
                Ok((path, None, Some((*src, claim, pv))))
            }
        }
    }

    /// Stages and publishes a CSI volume, with the service account tokens its driver
    /// asks for.
    async fn csi_set_up(
        &self,
        pod: &Pod,
        v: &Volume,
        src: &crate::volume::csi::Source,
        fs_group: Option<i64>,
        fs_group_policy: Option<&str>,
    ) -> Result<PathBuf, String> {
        let tokens = async |requests: &[(String, i64)]| {
            let mut out = BTreeMap::new();
            for (audience, expiration) in requests {
                let t = self
                    .token(
                        pod,
                        &v.name,
                        &format!("csi:{audience}"),
                        Some(audience.clone()),
                        *expiration,
                    )
                    .await?;
                out.insert(audience.clone(), t);
            }
            Ok(out)
        };
        self.csi
            .set_up(pod, src, fs_group, fs_group_policy, tokens)
            .await
    }

    /// Finishes a claim's expansion on the node once the volume was grown by its driver's
    /// controller (upstream's `NodeExpandVolume` in the volume manager): the filesystem
    /// is grown in place and the claim reports the new size.
    async fn expand_on_node(
        &self,
        pod: &Pod,
        src: &crate::volume::csi::Source,
        pvc: &PersistentVolumeClaim,
        pv: &PersistentVolume,
    ) -> Result<(), String> {
        let Some(capacity) = node_expansion_needed(pvc, pv) else {
            return Ok(());
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.csi.expand(&uid, src, capacity).await?;
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.client.clone(),
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let status = pvc.status.clone().unwrap_or_default();
        let conditions: Vec<_> = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.type_ != "FileSystemResizePending" && c.type_ != "Resizing")
            .collect();
        let pv_size = pv
            .spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .cloned();
        let patch = serde_json::json!({"status": {
            "capacity": {"storage": pv_size},
            "conditions": conditions,
            "allocatedResourceStatuses": {"storage": null},
        }});
        api.patch_status(
            pvc.metadata.name.as_deref().unwrap_or_default(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| format!("MountVolume.NodeExpandVolume failed to update the claim: {e}"))?;
        tracing::info!(
            volume = src.spec_name,
            capacity,
            "MountVolume.NodeExpandVolume succeeded"
        );
        Ok(())
    }

    async fn config_map_files(
        &self,
        ns: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        optional: Option<bool>,
        mode: Option<i32>,
    ) -> Result<Files, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(cm) => {
                let mut data: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(
                    cm.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                project(
                    data,
                    items,
                    optional,
                    mode,
                    "configmap references non-existent config key",
                )
            }
            None if optional == Some(true) => Ok(Files::new()),
            None => Err(format!("configmap \"{name}\" not found")),
        }
    }

    async fn secret_files(
        &self,
        ns: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        optional: Option<bool>,
        mode: Option<i32>,
    ) -> Result<Files, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(s) => {
                let data = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                project(
                    data,
                    items,
                    optional,
                    mode,
                    "references non-existent secret key",
                )
            }
            None if optional == Some(true) => Ok(Files::new()),
            None => Err(format!("secret \"{name}\" not found")),
        }
    }

    /// A bound service-account token, renewed at 80% of its lifetime.
    async fn token(
        &self,
        pod: &Pod,
        volume: &str,
        path: &str,
        audience: Option<String>,
        expiration: i64,
    ) -> Result<(String, String), String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), volume.to_string(), path.to_string());
        if let Some((t, renew, exp)) = self.tokens.lock().unwrap().get(&key)
            && Instant::now() < *renew
        {
            return Ok((t.clone(), exp.clone()));
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.into_iter().filter(|a| !a.is_empty()).collect(),
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: Some(uid),
                }),
            },
            ..Default::default()
        };
        let resp = api
            .create_token_request(&sa, &Default::default(), &req)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        let status = resp.status.ok_or("failed to fetch token: empty status")?;
        let now = jiff::Timestamp::now();
        let ttl = status
            .expiration_timestamp
            .0
            .duration_since(now)
            .as_secs()
            .max(1) as u64;
        let renew = Duration::from_secs((ttl * 8 / 10).min(24 * 3600));
        let exp = status.expiration_timestamp.0.to_string();
        self.tokens.lock().unwrap().insert(
            key,
            (status.token.clone(), Instant::now() + renew, exp.clone()),
        );
        Ok((status.token, exp))
    }

    /// Where the pod's emptyDir `name` lives on the node.
    pub fn empty_dir_path(&self, uid: &str, name: &str) -> PathBuf {
        self.pod_dir(uid)
            .join("volumes")
            .join("kubernetes.io~empty-dir")
            .join(name)
    }

    /// Removes the pod's volumes (CSI volumes unpublished, tmpfs unmounted) and its
    /// directory; nothing is removed while anything under it is still mounted, so a
    /// volume's data is never deleted through its mount point.
    pub async fn teardown(&self, uid: &str) -> Result<(), String> {
        let dir = self.pod_dir(uid);
        self.csi.tear_down_pod(uid).await?;
        self.csi.tear_down_pod_block(uid).await?;
        let empty = dir.join("volumes").join("kubernetes.io~empty-dir");
        for e in std::fs::read_dir(&empty).into_iter().flatten().flatten() {
            if csi::mount::is_mounted(&e.path()) {
                let _ = std::process::Command::new("umount").arg(e.path()).output();
            }
        }
        let left = csi::mount::mounts_under(&dir);
        if !left.is_empty() {
            return Err(format!(
                "pod {uid}: volumes are still mounted: {}",
                left.join(", ")
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.tokens.lock().unwrap().retain(|k, _| k.0 != uid);
        Ok(())
    }

    /// Pod directories on the node (by uid).
    pub fn pod_uids_on_disk(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("pods"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// A CSI volume of a claim whose expansion the node may have to finish.
type Expansion = (
    crate::volume::csi::Source,
    Box<PersistentVolumeClaim>,
    Box<PersistentVolume>,
);

/// A claim's volume.
enum Claimed {
    Path(PathBuf, bool),
    Csi(
        Box<crate::volume::csi::Source>,
        Box<PersistentVolumeClaim>,
        Box<PersistentVolume>,
    ),
}

fn storage_bytes(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Option<i64> {
    m?.get("storage")
        .map(|q| crate::nodestatus::quantity_bytes(&q.0))
}

/// The size a claim's filesystem is to be grown to on the node, when its driver's
/// controller grew the volume (the PersistentVolume's capacity) and the claim waits for
/// the node (`allocatedResourceStatuses.storage: NodeResizePending`, or the older
/// `FileSystemResizePending` condition).
pub fn node_expansion_needed(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Option<i64> {
    let status = pvc.status.as_ref()?;
    let pending = status
        .allocated_resource_statuses
        .as_ref()
        .and_then(|m| m.get("storage"))
        .is_some_and(|s| s == "NodeResizePending")
        || status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "FileSystemResizePending" && c.status == "True");
    let pv_size = storage_bytes(pv.spec.as_ref()?.capacity.as_ref())?;
    let claim_size = storage_bytes(status.capacity.as_ref()).unwrap_or(0);
    (pending && pv_size > claim_size).then_some(pv_size)
}

/// path -> (content, mode).
pub type Files = BTreeMap<String, (Vec<u8>, Option<i32>)>;

fn project(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: Option<i32>,
    missing: &str,
) -> Result<Files, String> {
    let mut files = Files::new();
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        files.insert(it.path.clone(), (v.clone(), it.mode.or(mode)));
                    }
                    None if optional == Some(true) => {}
                    None => return Err(format!("{missing} {:?}", it.key)),
                }
            }
        }
        _ => {
            for (k, v) in data {
                files.insert(k, (v, mode));
            }
        }
    }
    Ok(files)
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

/// Checks (and for the *OrCreate types creates) a hostPath volume's path.
fn host_path(path: &str, type_: &str) -> Result<(), String> {
    let p = Path::new(path);
    match type_ {
        "DirectoryOrCreate" if !p.exists() => {
            std::fs::create_dir_all(p).map_err(|e| format!("hostPath {path}: {e}"))?;
        }
        "FileOrCreate" if !p.exists() => {
            std::fs::File::create(p).map_err(|e| format!("hostPath {path}: {e}"))?;
        }
        "Directory" if !p.is_dir() => {
            return Err(format!(
                "hostPath type check failed: {path} is not a directory"
            ));
        }
        "File" if !p.is_file() => {
            return Err(format!("hostPath type check failed: {path} is not a file"));
        }
        "Socket" | "CharDevice" | "BlockDevice" if !p.exists() => {
            return Err(format!("hostPath type check failed: {path} does not exist"));
        }
        _ => {}
    }
    Ok(())
}

/// Upstream's AtomicWriter: the payload goes into a fresh `..<timestamp>` directory, the
/// `..data` symlink is switched to it by rename, and each top-level entry is a symlink
/// through `..data`, so readers never see a half-written update.
pub fn atomic_write(dir: &Path, files: &Files) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    mkdir(dir)?;
    let data_link = dir.join("..data");
    // Unchanged payloads are left alone.
    if let Ok(cur) = std::fs::read_link(&data_link) {
        let cur = dir.join(cur);
        let same = files
            .iter()
            .all(|(p, (v, _))| std::fs::read(cur.join(p)).ok().as_ref() == Some(v))
            && count_files(&cur) == files.len();
        if same {
            return Ok(());
        }
    }
    let ts = format!(
        "..{}",
        jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f")
    );
    let new_dir = dir.join(&ts);
    mkdir(&new_dir)?;
    for (path, (content, mode)) in files {
        if path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!("invalid path {path:?}"));
        }
        let target = new_dir.join(path);
        if let Some(parent) = target.parent() {
            mkdir(parent)?;
        }
        std::fs::write(&target, content).map_err(|e| format!("write {}: {e}", target.display()))?;
        let mode = mode.map_or(DEFAULT_MODE, |m| m as u32);
        let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode));
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&ts, &tmp_link).map_err(|e| e.to_string())?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp_link, &data_link).map_err(|e| e.to_string())?;
    // Top-level links through ..data; stale ones go.
    let top: std::collections::BTreeSet<String> = files
        .keys()
        .map(|p| p.split('/').next().unwrap_or_default().to_string())
        .collect();
    for t in &top {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(t), &link)
                .map_err(|e| e.to_string())?;
        }
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("..") && !top.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_swaps_payloads() {
        let dir = std::env::temp_dir().join(format!("aw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut f = Files::new();
        f.insert("a".into(), (b"1".to_vec(), None));
        f.insert("sub/b".into(), (b"2".to_vec(), None));
        atomic_write(&dir, &f).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        f.remove("sub/b");
        f.insert("a".into(), (b"3".to_vec(), None));
        atomic_write(&dir, &f).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert!(!dir.join("sub").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
