//! Raw block CSI volumes (upstream `pkg/volume/csi/csi_block.go`): staged at
//! `plugins/kubernetes.io/csi/volumeDevices/staging/<volume>`, published per pod as a
//! device file at `plugins/kubernetes.io/csi/volumeDevices/publish/<volume>/<pod uid>`
//! (what the runtime hands the container as the `volumeDevices` device), with the
//! volume's `vol_data.json` under `volumeDevices/<volume>/data` and, in the pod's
//! directory, a link under `volumeDevices/kubernetes.io~csi/<volume>` so the pod's
//! teardown finds it.

use super::{NodeCall, PLUGIN_DIR, Plugin, Source, VolData, read_vol_data, write_vol_data};
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
        write_vol_data(
            &data_dir(&self.root, &src.spec_name),
            &self.vol_data(src, &attachment, "Persistent"),
        )?;
        let mut call = NodeCall {
            client,
            src,
            publish_ctx,
            capability: super::capability(src, caps),
        };
        let staging = block_staging_path(&self.root, &src.spec_name);
        if caps.stage {
            self.node_stage(&mut call, &staging, "MapVolume.SetUpDevice")
                .await?;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        self.node_publish(
            &mut call,
            caps.stage.then_some(staging.as_path()),
            &target,
            src.attributes.clone(),
            "MapVolume.MapPodDevice",
        )
        .await?;
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
                self.unpublish(&data, &target, "UnmapVolume.UnmapPodDevice")
                    .await?;
                let _ = std::fs::remove_file(&target);
                let publish_dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
                let others = std::fs::read_dir(&publish_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .count();
                if others == 0 {
                    let staging = block_staging_path(&self.root, &spec);
                    self.unstage_at(&data, &staging, "UnmapVolume.TearDownDevice")
                        .await?;
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
