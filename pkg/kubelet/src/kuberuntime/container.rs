//! A container's CRI config (upstream `kuberuntime_container.go` +
//! `kuberuntime_container_linux.go`): image, command/args with `$(VAR)` expansion,
//! environment, mounts, log path, labels and annotations that tie it to its pod, cgroup
//! resources from requests/limits, and the security context.

use super::sandbox::{quantity_milli, quantity_value};
use crate::cri::{
    CONTAINER_HASH, CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID, RESTART_COUNT,
    TERMINATION_GRACE, TERMINATION_MESSAGE_PATH, api,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::{BTreeMap, HashMap};

/// A stable hash of the container's spec: a change means the container is replaced.
/// Resources (and their resize policy) are left out, as upstream: they change in place.
pub fn container_hash(c: &Container) -> String {
    let mut c = c.clone();
    c.resources = None;
    c.resize_policy = None;
    let text = serde_json::to_string(&c).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:x}", h as u32)
}

/// Milli-CPU to CFS shares (upstream `MilliCPUToShares`, at least 2).
fn shares(milli: i64) -> i64 {
    if milli == 0 {
        2
    } else {
        (milli * 1024 / 1000).max(2)
    }
}

/// Upstream's OOM score adjustment by QoS class.
pub fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: i64) -> i64 {
    match super::sandbox::qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let req = c
                .resources
                .as_ref()
                .and_then(|r| {
                    r.requests
                        .as_ref()?
                        .get("memory")
                        .map(|q| quantity_value(&q.0))
                })
                .unwrap_or(0);
            if memory_capacity <= 0 {
                return 999;
            }
            (1000 - 1000 * req / memory_capacity).clamp(2, 999)
        }
    }
}

pub fn linux_resources(
    pod: &Pod,
    c: &Container,
    memory_capacity: i64,
) -> api::LinuxContainerResources {
    let r = c.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| { m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone()) };
    let cpu_req = get(&r.requests, "cpu").or_else(|| get(&r.limits, "cpu"));
    let cpu_lim = get(&r.limits, "cpu");
    let mem_lim = get(&r.limits, "memory");
    let mut res = api::LinuxContainerResources {
        cpu_shares: shares(cpu_req.map_or(0, |q| quantity_milli(&q))),
        oom_score_adj: oom_score_adj(pod, c, memory_capacity),
        ..Default::default()
    };
    if let Some(l) = cpu_lim {
        res.cpu_period = 100_000;
        res.cpu_quota = (quantity_milli(&l) * 100_000 / 1000).max(1000);
    }
    if let Some(m) = mem_lim {
        res.memory_limit_in_bytes = quantity_value(&m);
    }
    res
}

pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub restart_count: u32,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<api::Mount>,
    /// The raw block volumes (`volumeDevices`), as device files on the node.
    pub devices: Vec<api::Device>,
    pub memory_capacity: i64,
    /// An ephemeral container's target: the running container whose process namespace it
    /// joins (`targetContainerName`).
    pub target_id: Option<String>,
    pub security: &'a super::security_context::SecurityOptions,
}

/// An ephemeral container as the container it runs as (the same fields, less the target;
/// it is never restarted).
pub fn ephemeral_as_container(e: &k8s_openapi::api::core::v1::EphemeralContainer) -> Container {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("targetContainerName");
    }
    serde_json::from_value(v).unwrap_or_default()
}

pub fn container_config(i: &ContainerInputs) -> api::ContainerConfig {
    let (pod, c) = (i.pod, i.container);
    let m = &pod.metadata;
    let env_map: BTreeMap<String, String> = i.env.iter().cloned().collect();
    let expand = |v: &Vec<String>| -> Vec<String> {
        v.iter().map(|s| super::env::expand(s, &env_map)).collect()
    };
    let labels = HashMap::from([
        (POD_NAME.to_string(), m.name.clone().unwrap_or_default()),
        (
            POD_NAMESPACE.to_string(),
            m.namespace.clone().unwrap_or_default(),
        ),
        (POD_UID.to_string(), m.uid.clone().unwrap_or_default()),
        (CONTAINER_NAME.to_string(), c.name.clone()),
    ]);
    let spec = pod.spec.clone().unwrap_or_default();
    let annotations = HashMap::from([
        (RESTART_COUNT.to_string(), i.restart_count.to_string()),
        (CONTAINER_HASH.to_string(), container_hash(c)),
        (
            crate::resize::APPLIED.to_string(),
            serde_json::to_string(&c.resources.clone().unwrap_or_default()).unwrap_or_default(),
        ),
        (
            TERMINATION_MESSAGE_PATH.to_string(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            super::termination::POLICY.to_string(),
            c.termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (
            TERMINATION_GRACE.to_string(),
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
    ]);
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt: i.restart_count,
        }),
        image: Some(api::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand(&c.command.clone().unwrap_or_default()),
        args: expand(&c.args.clone().unwrap_or_default()),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: i
            .env
            .iter()
            .map(|(k, v)| api::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts: i.mounts.clone(),
        devices: i.devices.clone(),
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, i.restart_count),
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        tty: c.tty == Some(true),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(linux_resources(pod, c, i.memory_capacity)),
            security_context: Some(super::security_context::container_security_context(
                pod,
                c,
                i.target_id.as_deref(),
                i.security,
            )),
        }),
        ..Default::default()
    }
}
