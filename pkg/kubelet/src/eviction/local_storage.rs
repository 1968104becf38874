//! Local ephemeral storage limits (upstream `localStorageEviction` in
//! `pkg/kubelet/eviction/eviction_manager.go`, on while `localStorageCapacityIsolation`
//! is): a pod is evicted when a disk-backed emptyDir outgrows its `sizeLimit`, when the
//! pod's usage (containers' writable layers and logs, and its emptyDirs) passes the sum
//! of its containers' `ephemeral-storage` limits, or when one container's own usage
//! passes its limit — in that order, with upstream's messages.

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// What a pod uses of the node's disk, in bytes.
#[derive(Clone, Debug, Default)]
pub struct PodStorageUsage {
    /// Disk-backed emptyDir volume name -> bytes.
    pub empty_dirs: BTreeMap<String, u64>,
    /// Container name -> writable layer plus logs.
    pub containers: BTreeMap<String, u64>,
}

fn bytes(q: &str) -> i64 {
    crate::nodestatus::quantity_bytes(q)
}

/// A quantity as upstream prints it (its canonical form).
fn canonical(q: &str) -> String {
    apimachinery::resource::Quantity::parse(q).map_or_else(|| q.to_string(), |q| q.to_string())
}

/// The eviction message for the first limit `pod` breaks, if any.
pub fn violation(pod: &Pod, usage: &PodStorageUsage) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    for v in spec.volumes.iter().flatten() {
        let Some(e) = &v.empty_dir else { continue };
        if e.medium.as_deref() == Some("Memory") {
            continue;
        }
        if let (Some(limit), Some(used)) = (&e.size_limit, usage.empty_dirs.get(&v.name))
            && bytes(&limit.0) > 0
            && *used as i64 > bytes(&limit.0)
        {
            return Some(format!(
                "Usage of EmptyDir volume \"{}\" exceeds the limit \"{}\". ",
                v.name,
                canonical(&limit.0)
            ));
        }
    }
    let limit_of = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref()?.get("ephemeral-storage"))
            .map(|q| q.0.clone())
    };
    // Summed as quantities, so the total prints in the limits' own format ("3Mi").
    let pod_limit = spec
        .containers
        .iter()
        .filter_map(limit_of)
        .filter_map(|q| apimachinery::resource::Quantity::parse(&q))
        .reduce(|a, b| a.add(&b));
    let total: u64 =
        usage.containers.values().sum::<u64>() + usage.empty_dirs.values().sum::<u64>();
    if let Some(limit) = pod_limit
        && limit.value() > 0
        && total as i64 > limit.value()
    {
        return Some(format!(
            "Pod ephemeral local storage usage exceeds the total limit of containers {limit}. "
        ));
    }
    for c in &spec.containers {
        if let (Some(limit), Some(used)) = (limit_of(c), usage.containers.get(&c.name))
            && *used as i64 > bytes(&limit)
        {
            return Some(format!(
                "Container {} exceeded its local ephemeral storage limit \"{}\". ",
                c.name,
                canonical(&limit)
            ));
        }
    }
    None
}

/// Bytes a directory tree takes on disk (allocated blocks, as `du`), not following
/// symlinks.
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}}],
            "containers": [
                {"name": "a", "resources": {"limits": {"ephemeral-storage": "2Mi"}}},
                {"name": "b", "resources": {"limits": {"ephemeral-storage": "1024Ki"}}}]}}))
        .unwrap()
    }

    fn usage(scratch: u64, a: u64, b: u64) -> PodStorageUsage {
        PodStorageUsage {
            empty_dirs: BTreeMap::from([("scratch".to_string(), scratch)]),
            containers: BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]),
        }
    }

    #[test]
    fn limits_in_upstream_order() {
        let mi = 1 << 20;
        let cases = [
            (usage(0, 0, 0), None),
            (
                usage(2 * mi, 0, 0),
                Some("Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". "),
            ),
            (
                usage(mi, 2 * mi + 1, 0),
                Some(
                    "Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ",
                ),
            ),
            (
                usage(0, 0, 2 * mi),
                Some("Container b exceeded its local ephemeral storage limit \"1Mi\". "),
            ),
        ];
        for (u, want) in cases {
            assert_eq!(violation(&pod(), &u).as_deref(), want, "{u:?}");
        }
    }

    #[test]
    fn du_counts_blocks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![1u8; 100_000]).unwrap();
        assert!(disk_usage(d.path()) >= 100_000);
    }
}
