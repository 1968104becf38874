//! Raw block CSI volumes (upstream `pkg/volume/csi/csi_block.go`): staged at
//! `plugins/kubernetes.io/csi/volumeDevices/staging/<volume>`, published per pod as a
//! device file at `plugins/kubernetes.io/csi/volumeDevices/publish/<volume>/<pod uid>`
//! (what the runtime hands the container as the `volumeDevices` device), with the
//! volume's `vol_data.json` under `volumeDevices/<volume>/data` and, in the pod's
//! directory, a link under `volumeDevices/kubernetes.io~csi/<volume>` so the pod's
//! teardown finds it.

use super::{PLUGIN_DIR, Plugin, Source, VolData, api, read_vol_data, write_vol_data};
use std::path::{Path, PathBuf};

fn devices_dir(root: &Path) -> PathBuf {
    root.join("plugins/kubernetes.io/csi/volumeDevices")
}

pub fn block_staging_path(root: &Path, spec_name: &str) -> PathBuf {
    devices_dir(root).join("staging").join(spec_name)
}

pub fn block_publish_path(root: &Path, spec_name: &str, uid: &str) -> PathBuf {
    devices_dir(root).join("publish").join(spec_name).join(uid)
}

fn data_dir(root: &Path, spec_name: &str) -> PathBuf {
    devices_dir(root).join(spec_name).join("data")
}

fn pod_link(root: &Path, uid: &str, spec_name: &str) -> PathBuf {
    root.join("pods")
        .join(uid)
        .join("volumeDevices")
        .join(PLUGIN_DIR)
        .join(spec_name)
}

/// The block volumes staged on the node.
pub fn staged(root: &Path) -> Vec<VolData> {
    std::fs::read_dir(devices_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read_vol_data(&e.path().join("data")))
        .collect()
}

fn rpc(what: &str, spec: &str, e: tonic::Status) -> String {
    format!(
        "{what} failed for volume {spec:?} : rpc error: code = {:?} desc = {}",
        e.code(),
        e.message()
    )
}

impl Plugin {
    /// Stages (once per node) and publishes a block volume for the pod; returns the device
    /// file the container gets.
    pub async fn set_up_block(&self, pod_uid: &str, src: &Source) -> Result<PathBuf, String> {
        let target = block_publish_path(&self.root, &src.spec_name, pod_uid);
        if csi::mount::is_mounted(&target) {
            return Ok(target);
        }
        let policy = self.policy(&src.driver).await?;
        let mut client = self.node_client(&src.driver)?;
        let caps = self.capabilities(&mut client).await?;
        let (attachment, publish_ctx) = if policy.attach_required {
            self.wait_for_attach(src).await.map_err(|e| {
                format!(
                    "MapVolume.WaitForAttach failed for volume {:?}: {e}",
                    src.spec_name
                )
            })?
        } else {
            (String::new(), Default::default())
        };
        let data = VolData {
            spec_vol_id: src.spec_name.clone(),
            volume_handle: src.handle.clone(),
            driver_name: src.driver.clone(),
            node_name: self.node_name.clone(),
            attachment_id: attachment,
            volume_lifecycle_mode: "Persistent".into(),
        };
        write_vol_data(&data_dir(&self.root, &src.spec_name), &data)?;
        let capability = super::capability(src, caps);
        let staging = block_staging_path(&self.root, &src.spec_name);
        if caps.stage {
            std::fs::create_dir_all(&staging)
                .map_err(|e| format!("creating {}: {e}", staging.display()))?;
            let secrets = self.secrets(&src.stage_secret).await?;
            client
                .node_stage_volume(api::NodeStageVolumeRequest {
                    volume_id: src.handle.clone(),
                    publish_context: publish_ctx.clone().into_iter().collect(),
                    staging_target_path: staging.to_string_lossy().into_owned(),
                    volume_capability: Some(capability.clone()),
                    secrets: secrets.into_iter().collect(),
                    volume_context: src.attributes.clone().into_iter().collect(),
                })
                .await
                .map_err(|e| rpc("MapVolume.SetUpDevice", &src.spec_name, e))?;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let secrets = self.secrets(&src.publish_secret).await?;
        client
            .node_publish_volume(api::NodePublishVolumeRequest {
                volume_id: src.handle.clone(),
                publish_context: publish_ctx.into_iter().collect(),
                staging_target_path: if caps.stage {
                    staging.to_string_lossy().into_owned()
                } else {
                    String::new()
                },
                target_path: target.to_string_lossy().into_owned(),
                volume_capability: Some(capability),
                readonly: src.read_only,
                secrets: secrets.into_iter().collect(),
                volume_context: src.attributes.clone().into_iter().collect(),
            })
            .await
            .map_err(|e| rpc("MapVolume.MapPodDevice", &src.spec_name, e))?;
        let link = pod_link(&self.root, pod_uid, &src.spec_name);
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .map_err(|e| format!("linking {}: {e}", link.display()))?;
        Ok(target)
    }

    /// Unpublishes the pod's block volumes, and unstages those no other pod uses.
    pub async fn tear_down_pod_block(&self, uid: &str) -> Result<(), String> {
        let dir = self
            .root
            .join("pods")
            .join(uid)
            .join("volumeDevices")
            .join(PLUGIN_DIR);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let spec = e.file_name().to_string_lossy().into_owned();
            let target = block_publish_path(&self.root, &spec, uid);
            if let Some(data) = read_vol_data(&data_dir(&self.root, &spec)) {
                let mut client = self.node_client(&data.driver_name)?;
                client
                    .node_unpublish_volume(api::NodeUnpublishVolumeRequest {
                        volume_id: data.volume_handle.clone(),
                        target_path: target.to_string_lossy().into_owned(),
                    })
                    .await
                    .map_err(|e| rpc("UnmapVolume.UnmapPodDevice", &spec, e))?;
                if csi::mount::is_mounted(&target) {
                    return Err(format!("{} is still mounted", target.display()));
                }
                let _ = std::fs::remove_file(&target);
                let publish_dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
                let others = std::fs::read_dir(&publish_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .count();
                if others == 0 {
                    let caps = self.capabilities(&mut client).await?;
                    let staging = block_staging_path(&self.root, &spec);
                    if caps.stage {
                        client
                            .node_unstage_volume(api::NodeUnstageVolumeRequest {
                                volume_id: data.volume_handle.clone(),
                                staging_target_path: staging.to_string_lossy().into_owned(),
                            })
                            .await
                            .map_err(|e| rpc("UnmapVolume.TearDownDevice", &spec, e))?;
                    }
                    let _ = std::fs::remove_dir_all(&staging);
                    let _ = std::fs::remove_dir_all(&publish_dir);
                    let _ = std::fs::remove_dir_all(devices_dir(&self.root).join(&spec));
                }
            } else if csi::mount::is_mounted(&target) {
                return Err(format!(
                    "{} is mapped but has no vol_data.json",
                    target.display()
                ));
            }
            let _ = std::fs::remove_file(e.path());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_paths_follow_upstream_layout() {
        let root = Path::new("/var/lib/kubelet");
        assert_eq!(
            block_staging_path(root, "pvc-1"),
            PathBuf::from("/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/staging/pvc-1")
        );
        assert_eq!(
            block_publish_path(root, "pvc-1", "u1"),
            PathBuf::from(
                "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-1/u1"
            )
        );
    }
}
