//! Volume usage, gathered every `volumeStatsAggPeriod` from the CSI drivers of the pods'
//! published volumes (`NodeGetVolumeStats`) and kept for the Summary API's
//! `pods[].volume` and the `kubelet_volume_stats_*` metrics of claims. Upstream twins:
//! `pkg/kubelet/server/stats/volume_stat_calculator.go`,
//! `pkg/kubelet/metrics/collectors/volume_stats.go`.

use super::csi::{VolumeStats, publish_dir, read_vol_data};
use crate::kubelet::Kubelet;
use crate::metrics::{METRICS, VolumeLabels};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use std::sync::Arc;

/// One volume of a pod with its usage.
#[derive(Clone, Debug, PartialEq)]
pub struct PodVolumeStats {
    /// The pod's name for the volume.
    pub name: String,
    /// (namespace, name) of the claim behind it.
    pub pvc: Option<(String, String)>,
    pub stats: VolumeStats,
    /// When the figures were taken (RFC 3339).
    pub time: String,
}

/// The Summary API's entry for a volume.
pub fn summary_entry(v: &PodVolumeStats) -> serde_json::Value {
    let s = &v.stats;
    let mut out = serde_json::json!({
        "time": v.time,
        "availableBytes": s.available_bytes,
        "capacityBytes": s.capacity_bytes,
        "usedBytes": s.used_bytes,
        "name": v.name,
    });
    if let Some((total, free, used)) = s.inodes {
        out["inodesFree"] = free.into();
        out["inodes"] = total.into();
        out["inodesUsed"] = used.into();
    }
    if let Some((ns, name)) = &v.pvc {
        out["pvcRef"] = serde_json::json!({"name": name, "namespace": ns});
    }
    out
}

/// The pod's CSI volumes: (pod volume name, the directory under the pod's
/// `kubernetes.io~csi`, the claim) — claims resolved to their PersistentVolume.
async fn csi_volumes(
    client: &kube::Client,
    pod: &Pod,
) -> Vec<(String, String, Option<(String, String)>)> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let claim = if let Some(c) = &v.persistent_volume_claim {
            c.claim_name.clone()
        } else if v.ephemeral.is_some() {
            format!(
                "{}-{}",
                pod.metadata.name.as_deref().unwrap_or_default(),
                v.name
            )
        } else {
            if v.csi.is_some() {
                out.push((v.name.clone(), v.name.clone(), None));
            }
            continue;
        };
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        if let Ok(Some(pvc)) = api.get_opt(&claim).await
            && let Some(pv) = pvc.spec.and_then(|s| s.volume_name)
        {
            out.push((v.name.clone(), pv, Some((ns.clone(), claim))));
        }
    }
    out
}

impl Kubelet {
    /// Gathers the usage of every published CSI volume of the node's pods.
    pub async fn gather_volume_stats(&self) {
        let now = jiff::Timestamp::now().to_string();
        let mut all = std::collections::HashMap::new();
        for uid in self.desired_uids() {
            let Some(pod) = self.pod(&uid) else { continue };
            let mut vols = Vec::new();
            for (name, dir_name, pvc) in csi_volumes(&self.client, &pod).await {
                let dir = publish_dir(&self.root, &uid, &dir_name);
                let Some(data) = read_vol_data(&dir) else {
                    continue;
                };
                match self.volumes.csi.stats(&data, &dir.join("mount")).await {
                    Ok(Some(stats)) => vols.push(PodVolumeStats {
                        name,
                        pvc,
                        stats,
                        time: now.clone(),
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(pod_uid = uid, volume = name, error = e, "volume stats")
                    }
                }
            }
            if !vols.is_empty() {
                all.insert(uid, vols);
            }
        }
        let m = &*METRICS;
        for f in [
            &m.volume_capacity_bytes,
            &m.volume_available_bytes,
            &m.volume_used_bytes,
            &m.volume_inodes,
            &m.volume_inodes_free,
            &m.volume_inodes_used,
            &m.volume_health_abnormal,
        ] {
            f.clear();
        }
        for v in all.values().flatten() {
            let Some((namespace, claim)) = &v.pvc else {
                continue;
            };
            let l = VolumeLabels {
                namespace: namespace.clone(),
                persistentvolumeclaim: claim.clone(),
            };
            let s = &v.stats;
            m.volume_capacity_bytes
                .get_or_create(&l)
                .set(s.capacity_bytes);
            m.volume_available_bytes
                .get_or_create(&l)
                .set(s.available_bytes);
            m.volume_used_bytes.get_or_create(&l).set(s.used_bytes);
            if let Some((total, free, used)) = s.inodes {
                m.volume_inodes.get_or_create(&l).set(total);
                m.volume_inodes_free.get_or_create(&l).set(free);
                m.volume_inodes_used.get_or_create(&l).set(used);
            }
            if let Some((abnormal, _)) = &s.abnormal {
                m.volume_health_abnormal
                    .get_or_create(&l)
                    .set(i64::from(*abnormal));
            }
        }
        *self.volumes.stats.lock().unwrap() = all;
    }
}

/// Gathers volume stats every `volumeStatsAggPeriod` (none when it is negative, as
/// upstream).
pub async fn run(k: Arc<Kubelet>) {
    if k.cfg.volume_stats_agg_period.trim_start().starts_with('-') {
        tracing::info!("Volume stats collection disabled");
        return;
    }
    let period = Kubelet::duration_of(&k.cfg.volume_stats_agg_period)
        .max(std::time::Duration::from_millis(100));
    k.pods.synced().await;
    loop {
        k.gather_volume_stats().await;
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_entries_carry_upstream_fields() {
        let v = PodVolumeStats {
            name: "data".into(),
            pvc: Some(("ns".into(), "data-web-0".into())),
            stats: VolumeStats {
                capacity_bytes: 100,
                available_bytes: 60,
                used_bytes: 40,
                inodes: Some((10, 7, 3)),
                abnormal: Some((false, "ok".into())),
            },
            time: "2026-01-01T00:00:00Z".into(),
        };
        let e = summary_entry(&v);
        assert_eq!(e["capacityBytes"], 100);
        assert_eq!(e["availableBytes"], 60);
        assert_eq!(e["usedBytes"], 40);
        assert_eq!(e["inodes"], 10);
        assert_eq!(e["inodesFree"], 7);
        assert_eq!(e["inodesUsed"], 3);
        assert_eq!(e["pvcRef"]["name"], "data-web-0");
        assert_eq!(e["pvcRef"]["namespace"], "ns");
        assert_eq!(e["name"], "data");
    }
}
