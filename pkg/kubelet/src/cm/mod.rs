//! The container manager (upstream `pkg/kubelet/cm`): the cgroup hierarchy pods run in.
//! `<cgroupRoot>/kubepods` holds the node's allocatable (capacity less `kubeReserved`
//! and `systemReserved` when `enforceNodeAllocatable` has `pods`), `burstable` and
//! `besteffort` below it hold those QoS classes (Guaranteed pods sit directly under
//! `kubepods`), and each pod gets `pod<uid>` with its requests, limits and
//! `podPidsLimit`, made before its sandbox and removed after it. Names follow the
//! cgroup driver: `/kubepods/burstable/pod<uid>` under cgroupfs,
//! `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice` under
//! systemd.

pub mod cgroupfs;
pub mod resources;

use crate::apis::config::KubeletConfiguration;
use crate::kuberuntime::sandbox::{qos_class, quantity_milli, quantity_value};
use cgroupfs::CgroupFs;
use k8s_openapi::api::core::v1::Pod;
use resources::ResourceConfig;
use std::collections::BTreeMap;

pub struct ContainerManager {
    /// None for a node whose runtime runs no processes (the fake runtime): nothing to
    /// place or limit.
    fs: Option<CgroupFs>,
    /// `cgroupRoot`, as levels (empty for `/`).
    root: Vec<String>,
    systemd: bool,
    pod_pids_limit: i64,
    enforce_pods: bool,
    /// kubeReserved + systemReserved: cpu in millicores, memory in bytes, pid.
    reserved: BTreeMap<String, i64>,
}

/// Sums reservations into the units the cgroups take.
fn reserved(cfg: &KubeletConfiguration) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (k, v) in cfg.kube_reserved.iter().chain(cfg.system_reserved.iter()) {
        let n = match k.as_str() {
            "cpu" => quantity_milli(v),
            _ => quantity_value(v),
        };
        *out.entry(k.clone()).or_insert(0) += n;
    }
    out
}

/// The checks upstream's container manager makes at start, for the configuration alone.
pub fn validate(cfg: &KubeletConfiguration) -> Vec<String> {
    let mut errs = Vec::new();
    for key in &cfg.enforce_node_allocatable {
        match key.as_str() {
            "pods" | "none" => {}
            "system-reserved" | "kube-reserved" | "system-reserved-compressible"
            | "kube-reserved-compressible" => errs.push(format!(
                "invalid configuration: enforceNodeAllocatable {key:?} is not supported by this kubelet: it enforces allocatable on pods only (needs systemReservedCgroup/kubeReservedCgroup management)"
            )),
            other => errs.push(format!(
                "invalid configuration: option {other:?} specified for enforceNodeAllocatable (--enforce-node-allocatable). Valid options are \"pods\", \"system-reserved\", \"kube-reserved\", \"system-reserved-compressible\", \"kube-reserved-compressible\" or \"none\""
            )),
        }
    }
    if cfg.enforce_node_allocatable.len() > 1
        && cfg.enforce_node_allocatable.iter().any(|k| k == "none")
    {
        errs.push("invalid configuration: enforceNodeAllocatable (--enforce-node-allocatable) may not contain additional enforcements when \"none\" is specified".into());
    }
    for (field, m) in [
        ("kubeReserved", &cfg.kube_reserved),
        ("systemReserved", &cfg.system_reserved),
    ] {
        for (k, v) in m {
            if !matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage" | "pid") {
                errs.push(format!(
                    "invalid configuration: {field}: cannot reserve {k:?} resource"
                ));
            } else if apimachinery::resource::Quantity::parse(v).is_none() {
                errs.push(format!("invalid configuration: {field}[{k}]: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
            }
        }
    }
    if !cfg.cgroup_root.is_empty() && !cfg.cgroup_root.starts_with('/') {
        errs.push(format!(
            "invalid configuration: cgroupRoot ({:?}) must be an absolute cgroup path",
            cfg.cgroup_root
        ));
    }
    errs
}

impl ContainerManager {
    /// `manage`: whether this node's pods are real processes whose cgroups the kubelet
    /// owns. The systemd driver needs systemd as the host's init, as upstream's does.
    pub fn new(cfg: &KubeletConfiguration, manage: bool) -> Result<Self, String> {
        let systemd = cfg.cgroup_driver == "systemd";
        if manage && !CgroupFs::host().unified() {
            if cfg.fail_cgroup_v1 {
                return Err("failed to validate kubelet configuration, error: kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is unsupported and will be removed in a future release (set failCgroupV1: false or --fail-cgroupv1=false to run on it anyway)".into());
            }
            tracing::warn!(
                "cgroup v1 detected. cgroup v1 support is deprecated and will be removed in a future release. Please migrate to cgroup v2. More information at https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1"
            );
        }
        if manage && systemd && !std::path::Path::new("/run/systemd/system").is_dir() {
            return Err("failed to run Kubelet: cgroupDriver is \"systemd\" but systemd is not running on this host (/run/systemd/system is absent); use cgroupDriver: cgroupfs".into());
        }
        Ok(ContainerManager {
            fs: manage.then(CgroupFs::host),
            root: cfg
                .cgroup_root
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            systemd,
            pod_pids_limit: cfg.pod_pids_limit,
            enforce_pods: cfg.enforce_node_allocatable.iter().any(|k| k == "pods"),
            reserved: reserved(cfg),
        })
    }

    /// A cgroup name from its levels below cgroupRoot, for the driver (upstream
    /// `CgroupName.ToCgroupfs` / `ToSystemd`: with systemd every level is a slice named
    /// after its ancestors, dashes in a level written as underscores).
    fn name(&self, levels: &[String]) -> String {
        cgroup_name(&self.root, levels, self.systemd)
    }

    fn levels(pod_uid: &str, qos: &str) -> Vec<String> {
        let mut v = vec!["kubepods".to_string()];
        match qos {
            "Guaranteed" => {}
            "Burstable" => v.push("burstable".into()),
            _ => v.push("besteffort".into()),
        }
        if !pod_uid.is_empty() {
            v.push(format!("pod{pod_uid}"));
        }
        v
    }

    /// The pod's cgroup: the sandbox's cgroup parent.
    pub fn pod_cgroup(&self, pod: &Pod) -> String {
        self.name(&Self::levels(
            pod.metadata.uid.as_deref().unwrap_or_default(),
            qos_class(pod),
        ))
    }

    /// A container's cgroup under its pod's: containerd names it `<id>` under cgroupfs
    /// and `cri-containerd-<id>.scope` under systemd.
    pub fn container_cgroup(&self, pod_cgroup: &str, id: &str) -> String {
        if self.systemd {
            format!("{pod_cgroup}/cri-containerd-{id}.scope")
        } else {
            format!("{pod_cgroup}/{id}")
        }
    }

    fn qos_cgroup(&self, qos: &str) -> String {
        self.name(&Self::levels("", qos))
    }

    /// Creates `kubepods` with the node's allocatable and the QoS cgroups
    /// (upstream `setupNode` / `qosContainerManager.Start`). `capacity`: cpu in
    /// millicores, memory in bytes.
    pub fn start(&self, capacity: &BTreeMap<String, i64>) -> Result<(), String> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let mut capacity = capacity.clone();
        if let Some(pid_max) = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            capacity.insert("pid".into(), pid_max);
        }
        let node = resources::node_allocatable_config(&capacity, &self.reserved, self.enforce_pods);
        let kubepods = self.qos_cgroup("Guaranteed");
        tracing::info!(cgroup = kubepods, config = ?node, unified = fs.unified(), "Creating the node allocatable cgroup");
        fs.ensure(&kubepods, &node)
            .map_err(|e| format!("failed to initialize top level QOS containers: {e}"))?;
        for (qos, shares) in [
            ("Burstable", resources::MIN_SHARES),
            ("BestEffort", resources::MIN_SHARES),
        ] {
            let cfg = ResourceConfig {
                cpu_shares: Some(shares),
                ..Default::default()
            };
            fs.ensure(&self.qos_cgroup(qos), &cfg)
                .map_err(|e| format!("failed to create top level {qos} QOS cgroup: {e}"))?;
        }
        Ok(())
    }

    /// Creates or updates the pod's cgroup before its sandbox runs (upstream
    /// `podContainerManager.EnsureExists`), then the Burstable class's shares from
    /// `active` (asked for only when the cgroup is new: this runs on every sync).
    pub fn ensure_pod(&self, pod: &Pod, active: impl FnOnce() -> Vec<Pod>) -> Result<(), String> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let name = self.pod_cgroup(pod);
        if fs.exists(&name) {
            return Ok(());
        }
        let cfg = resources::pod_config(pod, self.pod_pids_limit);
        fs.ensure(&name, &cfg).map_err(|e| {
            format!(
                "failed to ensure that the pod: {} cgroups exist and are correctly applied: {e}",
                pod.metadata.uid.as_deref().unwrap_or_default()
            )
        })?;
        self.update_qos(&active());
        Ok(())
    }

    /// Applies a pod's resized resources to its cgroup (upstream `SetPodCgroupConfig`
    /// during an in-place resize).
    pub fn resize_pod(&self, pod: &Pod, active: &[Pod]) {
        let Some(fs) = &self.fs else { return };
        let name = self.pod_cgroup(pod);
        if let Err(e) = fs.update(&name, &resources::pod_config(pod, self.pod_pids_limit)) {
            tracing::warn!(cgroup = name, error = %e, "Failed to set the pod cgroup config for a resize");
        }
        self.update_qos(active);
    }

    /// Sets the Burstable class's shares to what its pods request (upstream
    /// `UpdateCgroups`).
    pub fn update_qos(&self, active: &[Pod]) {
        let Some(fs) = &self.fs else { return };
        let cfg = ResourceConfig {
            cpu_shares: Some(resources::burstable_shares(active.iter())),
            ..Default::default()
        };
        if let Err(e) = fs.update(&self.qos_cgroup("Burstable"), &cfg) {
            tracing::warn!(error = %e, "Failed to update QoS cgroup configuration");
        }
    }

    /// Removes the pod's cgroup once its sandbox is gone (upstream `Destroy`), killing
    /// anything the runtime left in it.
    pub fn destroy_pod(&self, pod: &Pod) {
        let Some(fs) = &self.fs else { return };
        let name = self.pod_cgroup(pod);
        if fs.exists(&name)
            && let Err(e) = fs.destroy(&name)
        {
            tracing::warn!(cgroup = name, error = %e, "Failed to delete cgroup paths");
        }
    }

    /// Removes pod cgroups under the QoS classes that belong to no pod in `known`, hold
    /// no process and were made over a minute ago (upstream's
    /// `cleanupOrphanedPodCgroups`; unlike upstream, a cgroup with processes is left
    /// alone, since kubelets sharing one hierarchy must not kill each other's pods).
    pub fn cleanup_orphans(&self, known: &std::collections::HashSet<String>) {
        let Some(fs) = &self.fs else { return };
        if self.systemd {
            return;
        }
        for qos in ["Guaranteed", "Burstable", "BestEffort"] {
            let parent = self.qos_cgroup(qos);
            for (uid, age) in fs.children(&parent) {
                let Some(uid) = uid.strip_prefix("pod") else {
                    continue;
                };
                if known.contains(uid) || age < std::time::Duration::from_secs(60) {
                    continue;
                }
                let name = format!("{parent}/pod{uid}");
                if fs.pids(&name).is_empty() {
                    tracing::info!(cgroup = name, "Removing an orphaned pod cgroup");
                    if let Err(e) = fs.destroy(&name) {
                        tracing::warn!(cgroup = name, error = %e, "Failed to remove an orphaned pod cgroup");
                    }
                }
            }
        }
    }

    /// Processes running in the node's pods (for PID accounting), if cgroups are managed.
    pub fn pod_pids(&self) -> Option<usize> {
        let fs = self.fs.as_ref()?;
        Some(fs.pids(&self.qos_cgroup("Guaranteed")).len())
    }
}

/// See [`ContainerManager::name`].
pub fn cgroup_name(root: &[String], levels: &[String], systemd: bool) -> String {
    let all: Vec<&String> = root.iter().chain(levels.iter()).collect();
    if !systemd {
        return format!(
            "/{}",
            all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/")
        );
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for level in all {
        let level = level.replace('-', "_");
        prefix = if prefix.is_empty() {
            level
        } else {
            format!("{prefix}-{level}")
        };
        path.push_str(&format!("/{prefix}.slice"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_names_follow_the_driver_and_root() {
        let uid = "5f3c-9a";
        let levels = |qos| ContainerManager::levels(uid, qos);
        assert_eq!(
            cgroup_name(&[], &levels("BestEffort"), false),
            "/kubepods/besteffort/pod5f3c-9a"
        );
        assert_eq!(
            cgroup_name(&[], &levels("Guaranteed"), false),
            "/kubepods/pod5f3c-9a"
        );
        assert_eq!(
            cgroup_name(&["node-a".into()], &levels("Burstable"), false),
            "/node-a/kubepods/burstable/pod5f3c-9a"
        );
        assert_eq!(
            cgroup_name(&[], &levels("Burstable"), true),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f3c_9a.slice"
        );
        assert_eq!(
            cgroup_name(&[], &levels("Guaranteed"), true),
            "/kubepods.slice/kubepods-pod5f3c_9a.slice"
        );
    }

    #[test]
    fn refusals() {
        let mut cfg = KubeletConfiguration {
            enforce_node_allocatable: vec!["pods".into(), "kube-reserved".into()],
            ..Default::default()
        };
        assert!(validate(&cfg)[0].contains("\"kube-reserved\" is not supported"));
        cfg.enforce_node_allocatable = vec!["pods".into(), "none".into()];
        assert!(validate(&cfg)[0].contains("may not contain additional"));
        cfg.enforce_node_allocatable = vec!["pods".into()];
        cfg.cgroup_root = "relative".into();
        assert!(validate(&cfg)[0].contains("absolute"));
        cfg.cgroup_root = "/".into();
        assert!(validate(&cfg).is_empty());
        let r = reserved(&KubeletConfiguration {
            kube_reserved: [
                ("cpu".to_string(), "100m".to_string()),
                ("memory".to_string(), "1Gi".to_string()),
            ]
            .into(),
            system_reserved: [("cpu".to_string(), "0.5".to_string())].into(),
            ..Default::default()
        });
        assert_eq!((r["cpu"], r["memory"]), (600, 1 << 30));
    }
}
