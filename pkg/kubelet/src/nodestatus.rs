//! Node registration, status and heartbeat (upstream `pkg/kubelet/kubelet_node_status.go`,
//! `nodestatus/setters.go` and `nodelease`): the Node object with capacity read off the
//! machine, upstream's conditions and reasons, addresses, nodeInfo and images, patched
//! every `nodeStatusUpdateFrequency` when something changed (and every
//! `nodeStatusReportFrequency` regardless), and the `kube-node-lease` Lease renewed every
//! quarter of `nodeLeaseDurationSeconds`.

use crate::cri::remote::RemoteRuntime;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const KUBELET_VERSION: &str = "v1.35.0";

pub struct NodeStatusConfig {
    pub node_name: String,
    pub node_ip: String,
    pub hostname: String,
    pub max_pods: i32,
    pub root_dir: std::path::PathBuf,
    pub port: u16,
    pub register_with_taints: Vec<k8s_openapi::api::core::v1::Taint>,
    pub eviction_memory: i64,
    pub reserved: BTreeMap<String, String>,
    pub provider_id: String,
    pub labels: BTreeMap<String, String>,
}

/// Bytes of a memory quantity such as `100Mi` (0 if unparsable).
pub fn quantity_bytes(q: &str) -> i64 {
    apimachinery::resource::Quantity::parse(q)
        .map(|q| q.value())
        .unwrap_or(0)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Machine capacity: cpu, memory, ephemeral-storage (of the root dir's filesystem), pods.
pub fn machine_capacity(root: &std::path::Path, max_pods: i32) -> BTreeMap<String, i64> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let mem_kb: i64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let (total, _) = fs_usage(root);
    BTreeMap::from([
        ("cpu".into(), cpus),
        ("memory".into(), mem_kb * 1024),
        ("ephemeral-storage".into(), total as i64),
        ("pods".into(), max_pods as i64),
        ("hugepages-2Mi".into(), 0),
        ("hugepages-1Gi".into(), 0),
    ])
}

/// (total, free) inodes of the filesystem holding `path`.
pub fn fs_inodes(path: &std::path::Path) -> (u64, u64) {
    // SAFETY: statvfs is plain integers, for which all zeroes is a valid value.
    let mut st: libc_statvfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: statvfs writes into the zeroed struct we own.
    if unsafe { statvfs(c.as_ptr(), &mut st) } != 0 {
        return (0, 0);
    }
    (st.f_files, st.f_favail)
}

/// (total, available) bytes of the filesystem holding `path`.
pub fn fs_usage(path: &std::path::Path) -> (u64, u64) {
    // SAFETY: statvfs is plain integers, for which all zeroes is a valid value.
    let mut st: libc_statvfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: statvfs writes into the zeroed struct we own.
    if unsafe { statvfs(c.as_ptr(), &mut st) } != 0 {
        return (0, 0);
    }
    (st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
}

#[repr(C)]
#[allow(non_camel_case_types)]
pub struct libc_statvfs {
    f_bsize: u64,
    f_frsize: u64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_favail: u64,
    f_fsid: u64,
    f_flag: u64,
    f_namemax: u64,
    __spare: [i32; 6],
}

unsafe extern "C" {
    fn statvfs(path: *const std::ffi::c_char, buf: *mut libc_statvfs) -> i32;
}

/// Available memory as upstream's eviction manager computes it (capacity - working set),
/// approximated by MemAvailable.
pub fn memory_available() -> i64 {
    read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        .unwrap_or(0)
        * 1024
}

fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    prev: Option<&NodeCondition>,
) -> Value {
    let status = if (type_ == "Ready") == ok {
        "True"
    } else {
        "False"
    };
    let now = jiff::Timestamp::now().to_string();
    // lastTransitionTime moves only when the status changes.
    let transition = prev
        .filter(|p| p.status == status)
        .and_then(|p| p.last_transition_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| now.clone());
    json!({"type": type_, "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": now, "lastTransitionTime": transition})
}

/// The node object registered at start.
pub fn initial_node(cfg: &NodeStatusConfig) -> Node {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), cfg.hostname.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "kubernetes.io/arch".to_string(),
            component_base::go_arch().to_string(),
        ),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "beta.kubernetes.io/arch".to_string(),
            component_base::go_arch().to_string(),
        ),
    ]);
    labels.extend(cfg.labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(cfg.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(cfg.register_with_taints.clone()).filter(|t| !t.is_empty()),
            provider_id: Some(cfg.provider_id.clone()).filter(|p| !p.is_empty()),
            ..Default::default()
        }),
        status: None,
    }
}

/// Registers the node (upstream `registerWithAPIServer`): create, or accept the existing one.
pub async fn register(client: &kube::Client, cfg: &NodeStatusConfig) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    match api.create(&PostParams::default(), &initial_node(cfg)).await {
        Ok(_) => {
            tracing::info!(node = cfg.node_name, "Successfully registered node");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(format!("Unable to register node with API server: {e}")),
    }
}

pub struct StatusInputs {
    pub runtime_ready: Result<(), String>,
    pub runtime_version: String,
    pub images: Vec<(Vec<String>, u64)>,
    pub memory_pressure: bool,
    pub disk_pressure: bool,
    pub pid_pressure: bool,
    /// Volumes mounted (or staged) here, by unique name (`node.status.volumesInUse`,
    /// which the attach/detach controller waits on before detaching).
    pub volumes_in_use: Vec<String>,
}

/// The node status the kubelet reports.
pub fn node_status(cfg: &NodeStatusConfig, inputs: &StatusInputs, current: Option<&Node>) -> Value {
    let cap = machine_capacity(&cfg.root_dir, cfg.max_pods);
    let capacity: BTreeMap<String, String> = cap
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let mut allocatable = BTreeMap::new();
    for (k, v) in &cap {
        let reserved = cfg.reserved.get(k).map(|r| {
            if k == "cpu" {
                apimachinery::resource::Quantity::parse(r).map_or(0, |q| q.milli_value())
            } else {
                quantity_bytes(r)
            }
        });
        let value = match k.as_str() {
            "cpu" => format!("{}m", (v * 1000 - reserved.unwrap_or(0)).max(0)),
            "memory" => (v - reserved.unwrap_or(0) - cfg.eviction_memory)
                .max(0)
                .to_string(),
            "ephemeral-storage" => (v - reserved.unwrap_or(0) - v / 10).max(0).to_string(),
            _ => (v - reserved.unwrap_or(0)).max(0).to_string(),
        };
        allocatable.insert(k.clone(), value);
    }
    // Whole cores print as such.
    if let Some(c) = allocatable.get_mut("cpu")
        && let Some(m) = c.strip_suffix('m').and_then(|m| m.parse::<i64>().ok())
        && m % 1000 == 0
    {
        *c = (m / 1000).to_string();
    }
    let prev = |t: &str| {
        current
            .and_then(|n| n.status.as_ref()?.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
    };
    let (ready_reason, ready_message) = match &inputs.runtime_ready {
        Ok(()) => (
            "KubeletReady",
            "kubelet is posting ready status".to_string(),
        ),
        Err(e) => ("KubeletNotReady", e.clone()),
    };
    let conditions = vec![
        condition(
            "MemoryPressure",
            !inputs.memory_pressure,
            if inputs.memory_pressure {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
            if inputs.memory_pressure {
                "kubelet has insufficient memory available"
            } else {
                "kubelet has sufficient memory available"
            },
            prev("MemoryPressure"),
        ),
        condition(
            "DiskPressure",
            !inputs.disk_pressure,
            if inputs.disk_pressure {
                "KubeletHasDiskPressure"
            } else {
                "KubeletHasNoDiskPressure"
            },
            if inputs.disk_pressure {
                "kubelet has disk pressure"
            } else {
                "kubelet has no disk pressure"
            },
            prev("DiskPressure"),
        ),
        condition(
            "PIDPressure",
            !inputs.pid_pressure,
            if inputs.pid_pressure {
                "KubeletHasInsufficientPID"
            } else {
                "KubeletHasSufficientPID"
            },
            if inputs.pid_pressure {
                "kubelet has insufficient PID available"
            } else {
                "kubelet has sufficient PID available"
            },
            prev("PIDPressure"),
        ),
        condition(
            "Ready",
            inputs.runtime_ready.is_ok(),
            ready_reason,
            &ready_message,
            prev("Ready"),
        ),
    ];
    let mut images: Vec<Value> = inputs
        .images
        .iter()
        .map(|(names, size)| json!({"names": names, "sizeBytes": size}))
        .collect();
    images.truncate(50);
    let arch = component_base::go_arch();
    let mut addresses = Vec::new();
    if !cfg.node_ip.is_empty() {
        addresses.push(json!({"type": "InternalIP", "address": cfg.node_ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": cfg.hostname}));
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": {
            "machineID": read("/etc/machine-id"),
            "systemUUID": read("/sys/class/dmi/id/product_uuid"),
            "bootID": read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": inputs.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch,
        },
        "images": images,
        // Null clears the list in the strategic merge patch when nothing is in use.
        "volumesInUse": (!inputs.volumes_in_use.is_empty()).then_some(&inputs.volumes_in_use),
    })
}

/// Everything but the heartbeat times, to tell whether a status changed.
fn without_heartbeats(mut v: Value) -> Value {
    for c in v["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(o) = c.as_object_mut() {
            o.remove("lastHeartbeatTime");
            o.remove("lastTransitionTime");
        }
    }
    v
}

/// Tracks what was reported last, so unchanged statuses are only re-sent every
/// `nodeStatusReportFrequency`.
pub struct Reporter {
    last: Option<(Value, Instant)>,
    pub report_frequency: Duration,
}

impl Reporter {
    pub fn new(report_frequency: Duration) -> Self {
        Reporter {
            last: None,
            report_frequency,
        }
    }

    /// Patches the node's status if it changed or is due (upstream `tryUpdateNodeStatus`).
    pub async fn update(
        &mut self,
        client: &kube::Client,
        cfg: &NodeStatusConfig,
        inputs: &StatusInputs,
    ) -> Result<Node, String> {
        let api: Api<Node> = Api::all(client.clone());
        let node = api
            .get(&cfg.node_name)
            .await
            .map_err(|e| format!("error getting node {:?}: {e}", cfg.node_name))?;
        let status = node_status(cfg, inputs, Some(&node));
        let key = without_heartbeats(status.clone());
        if let Some((last, at)) = &self.last
            && *last == key
            && at.elapsed() < self.report_frequency
        {
            return Ok(node);
        }
        let node = api
            .patch_status(
                &cfg.node_name,
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": status})),
            )
            .await
            .map_err(|e| format!("error updating node status: {e}"))?;
        self.last = Some((key, Instant::now()));
        Ok(node)
    }
}

/// Creates or renews the node's Lease (upstream `nodelease` controller).
pub async fn renew_lease(
    client: &kube::Client,
    node: &str,
    node_uid: Option<&str>,
    duration_seconds: i32,
) -> Result<(), String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = MicroTime(jiff::Timestamp::now());
    match api.get_opt(node).await.map_err(|e| e.to_string())? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(now);
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(duration_seconds);
            if lease
                .metadata
                .owner_references
                .as_ref()
                .is_none_or(|o| o.is_empty())
                && let Some(uid) = node_uid
            {
                lease.metadata.owner_references = Some(vec![node_owner(node, uid)]);
            }
            api.replace(node, &PostParams::default(), &lease)
                .await
                .map_err(|e| format!("failed to update lease: {e}"))?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_string()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: node_uid.map(|u| vec![node_owner(node, u)]),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(duration_seconds),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease)
                .await
                .map_err(|e| format!("failed to create lease: {e}"))?;
        }
    }
    Ok(())
}

pub fn node_owner(node: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: uid.into(),
        ..Default::default()
    }
}

/// The runtime's readiness as the Ready condition reports it (upstream `runtimeState`).
pub async fn runtime_state(rt: &RemoteRuntime) -> Result<(), String> {
    let st = rt
        .status()
        .await
        .map_err(|e| format!("container runtime is down: {}", e.message()))?;
    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
    for (t, label) in [
        (
            "RuntimeReady",
            "container runtime status check may not have completed yet",
        ),
        ("NetworkReady", ""),
    ] {
        match conds.iter().find(|c| c.r#type == t) {
            Some(c) if c.status => {}
            Some(c) => {
                return Err(if t == "NetworkReady" {
                    format!(
                        "container runtime network not ready: NetworkReady=false reason:{} message:{}",
                        c.reason, c.message
                    )
                } else {
                    format!(
                        "container runtime not ready: RuntimeReady=false reason:{} message:{}",
                        c.reason, c.message
                    )
                });
            }
            None if !label.is_empty() => return Err(label.into()),
            None => {}
        }
    }
    Ok(())
}
