//! Static pods (upstream `pkg/kubelet/config/file.go` + `common.go`): every manifest in
//! `staticPodPath` (YAML or JSON, one Pod each) becomes a pod named `<name>-<node>`,
//! with a uid hashed from its content and node, the `kubernetes.io/config.*`
//! annotations, and upstream's defaults; the directory is re-read every
//! `fileCheckFrequency` and within a second of a change.

use crate::kubelet::{CONFIG_HASH, CONFIG_SOURCE, Kubelet};
use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn fnv(data: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A pod from one manifest, with upstream's defaults and source annotations.
pub fn static_pod(text: &str, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("pod has no name")?;
    let hash = format!(
        "{:016x}{:016x}",
        fnv(text.as_bytes(), 0xcbf29ce484222325) ^ fnv(node.as_bytes(), 7),
        fnv(text.as_bytes(), 0x84222325cbf29ce4)
    );
    let m = &mut pod.metadata;
    m.name = Some(format!("{name}-{node}"));
    if m.namespace.as_deref().is_none_or(str::is_empty) {
        m.namespace = Some("default".into());
    }
    if m.uid.as_deref().is_none_or(str::is_empty) {
        m.uid = Some(hash.clone());
    }
    let a = m.annotations.get_or_insert_with(Default::default);
    a.insert(CONFIG_HASH.into(), m.uid.clone().unwrap_or_default());
    a.insert(CONFIG_SOURCE.into(), "file".into());
    a.insert(
        "kubernetes.io/config.seen".into(),
        jiff::Timestamp::now().to_string(),
    );
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.into());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.enable_service_links.get_or_insert(true);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
        if c.image_pull_policy.is_none() {
            c.image_pull_policy = Some(crate::images::pull_policy(c));
        }
    }
    Ok(pod)
}

fn read_dir(dir: &Path, node: &str) -> HashMap<String, Pod> {
    let mut pods = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return pods;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with('.') || !p.is_file() {
            continue;
        }
        match std::fs::read_to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| static_pod(&t, node))
        {
            Ok(pod) => {
                pods.insert(pod.metadata.uid.clone().unwrap_or_default(), pod);
            }
            Err(e) => {
                tracing::warn!(path = %p.display(), error = e, "Could not process manifest file")
            }
        }
    }
    pods
}

/// What the directory holds, by name, modification time and size: a change is noticed
/// within a second (upstream watches the directory with inotify).
fn fingerprint(dir: &Path) -> Vec<(std::ffi::OsString, Option<std::time::SystemTime>, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let meta = e.metadata().ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            (e.file_name(), mtime, meta.map_or(0, |m| m.len()))
        })
        .collect();
    out.sort();
    out
}

pub async fn run(k: Arc<Kubelet>, dir: std::path::PathBuf, period: Duration) {
    let period = period.max(Duration::from_secs(1));
    let mut seen = None;
    let mut last_read = tokio::time::Instant::now();
    loop {
        let now = fingerprint(&dir);
        if seen.as_ref() == Some(&now) && last_read.elapsed() < period {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        seen = Some(now);
        last_read = tokio::time::Instant::now();
        let pods = read_dir(&dir, &k.node_name);
        let changed: Vec<String> = {
            let mut cur = k.static_pods.lock().unwrap();
            let mut changed: Vec<String> = pods
                .keys()
                .filter(|u| !cur.contains_key(*u))
                .cloned()
                .collect();
            changed.extend(cur.keys().filter(|u| !pods.contains_key(*u)).cloned());
            *cur = pods;
            changed
        };
        for uid in changed {
            k.dispatch(&uid);
        }
    }
}
