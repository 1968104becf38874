//! What each kubelet-managed cgroup is given (upstream `pkg/kubelet/cm/helpers_linux.go`
//! `ResourceConfigForPod`, `node_container_manager_linux.go` and
//! `qos_container_manager_linux.go`): pure functions from pods and node capacity to a
//! [`ResourceConfig`], so the policy is table-tested apart from the cgroup files.

use crate::kuberuntime::sandbox::{qos_class, quantity_milli, quantity_value};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use std::collections::BTreeMap;

/// Shares a cgroup gets when it asks for no CPU (upstream `MinShares`).
pub const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// The CFS period every quota is expressed in (upstream's default `cpuCFSQuotaPeriod`).
pub const CPU_PERIOD_US: u64 = 100_000;
const MIN_QUOTA_US: i64 = 1_000;

/// Limits of one cgroup; None leaves the setting as it is (unlimited when created).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceConfig {
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per [`CPU_PERIOD_US`].
    pub cpu_quota: Option<i64>,
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// Upstream `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> u64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    ((milli as u64) * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream `MilliCPUToQuota` for the default period.
pub fn milli_cpu_to_quota(milli: i64) -> i64 {
    (milli * CPU_PERIOD_US as i64 / 1000).max(MIN_QUOTA_US)
}

/// cgroup v2's `cpu.weight` for v1 shares (runc's `ConvertCPUSharesToCgroupV2Value`).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

fn quantity(r: Option<&ResourceRequirements>, limits: bool, name: &str) -> Option<String> {
    let m = if limits {
        r?.limits.as_ref()
    } else {
        r?.requests.as_ref()
    };
    m?.get(name).map(|q| q.0.clone())
}

/// A container's request of `name`, its limit standing in for a missing request as the
/// API server's defaulting does.
fn request(c: &Container, name: &str) -> Option<String> {
    quantity(c.resources.as_ref(), false, name)
        .or_else(|| quantity(c.resources.as_ref(), true, name))
}

/// Sum of the app containers (and restartable init containers, which run beside them)
/// against the largest one-shot init container, per resource; whether every container
/// set it (a pod limit exists only then).
fn effective(pod: &Pod, name: &str, limits: bool, value: fn(&str) -> i64) -> (i64, bool) {
    let spec = pod.spec.clone().unwrap_or_default();
    let get = |c: &Container| {
        if limits {
            quantity(c.resources.as_ref(), true, name)
        } else {
            request(c, name)
        }
    };
    let mut all = true;
    let mut sum = 0;
    let mut sidecars = 0;
    let mut init_max = 0;
    for c in spec.init_containers.iter().flatten() {
        let v = get(c);
        all &= v.is_some();
        let v = v.map_or(0, |q| value(&q));
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars += v;
            sum += v;
        } else {
            init_max = init_max.max(sidecars + v);
        }
    }
    for c in &spec.containers {
        let v = get(c);
        all &= v.is_some();
        sum += v.map_or(0, |q| value(&q));
    }
    let mut total = sum.max(init_max);
    if let Some(o) = spec.overhead.as_ref().and_then(|o| o.get(name)) {
        total += value(&o.0);
    }
    (total, all)
}

/// The pod's own cgroup (upstream `ResourceConfigForPod`): CPU shares from its requests,
/// a CFS quota and a memory limit when every container is limited (pod-level
/// `resources` take the place of the containers' when set), and `podPidsLimit`.
pub fn pod_config(pod: &Pod, pod_pids_limit: i64) -> ResourceConfig {
    let pids_limit = (pod_pids_limit > 0).then_some(pod_pids_limit);
    let pod_level = pod.spec.as_ref().and_then(|s| s.resources.as_ref());
    let pick = |name: &str, limits: bool, value: fn(&str) -> i64| -> (i64, bool) {
        if let Some(q) = quantity(pod_level, limits, name)
            .or_else(|| (!limits).then(|| quantity(pod_level, true, name)).flatten())
        {
            return (value(&q), true);
        }
        effective(pod, name, limits, value)
    };
    let (cpu_req, _) = pick("cpu", false, quantity_milli);
    let (cpu_lim, cpu_limited) = pick("cpu", true, quantity_milli);
    let (mem_lim, mem_limited) = pick("memory", true, quantity_value);
    match qos_class(pod) {
        "BestEffort" => ResourceConfig {
            cpu_shares: Some(MIN_SHARES),
            pids_limit,
            ..Default::default()
        },
        qos => {
            let guaranteed = qos == "Guaranteed";
            ResourceConfig {
                cpu_shares: Some(milli_cpu_to_shares(cpu_req)),
                cpu_quota: (guaranteed || cpu_limited).then(|| milli_cpu_to_quota(cpu_lim)),
                memory_limit: (guaranteed || mem_limited).then_some(mem_lim),
                pids_limit,
            }
        }
    }
}

/// The Burstable QoS cgroup's shares: the sum of its pods' CPU requests (upstream
/// `setCPUCgroupConfig`), so Burstable pods together weigh what they asked for.
pub fn burstable_shares<'a>(pods: impl Iterator<Item = &'a Pod>) -> u64 {
    let milli: i64 = pods
        .filter(|p| qos_class(p) == "Burstable")
        .map(|p| effective(p, "cpu", false, quantity_milli).0)
        .sum();
    milli_cpu_to_shares(milli)
}

/// `kubepods` (upstream `createNodeAllocatableCgroups`): the node's capacity, less
/// `kubeReserved` and `systemReserved` when `enforceNodeAllocatable` has `pods`.
/// `capacity` holds `cpu` in millicores, `memory` in bytes and `pid` in processes.
pub fn node_allocatable_config(
    capacity: &BTreeMap<String, i64>,
    reserved: &BTreeMap<String, i64>,
    enforce_pods: bool,
) -> ResourceConfig {
    let absolute = |name: &str| -> Option<i64> {
        let cap = *capacity.get(name)?;
        let r = if enforce_pods {
            reserved.get(name).copied().unwrap_or(0)
        } else {
            0
        };
        Some((cap - r).max(0))
    };
    ResourceConfig {
        cpu_shares: absolute("cpu").map(milli_cpu_to_shares),
        cpu_quota: None,
        memory_limit: absolute("memory"),
        pids_limit: absolute("pid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: serde_json::Value, init: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"uid": "u"},
            "spec": {"containers": containers, "initContainers": init}}))
        .unwrap()
    }

    fn c(req: serde_json::Value, lim: serde_json::Value) -> serde_json::Value {
        json!({"name": "c", "resources": {"requests": req, "limits": lim}})
    }

    #[test]
    fn pod_cgroups_follow_qos() {
        struct Case {
            name: &'static str,
            pod: Pod,
            want: ResourceConfig,
        }
        let cases = [
            Case {
                name: "best effort gets the minimum shares and the pids limit",
                pod: pod(json!([{"name": "a"}]), json!([])),
                want: ResourceConfig {
                    cpu_shares: Some(2),
                    pids_limit: Some(100),
                    ..Default::default()
                },
            },
            Case {
                name: "guaranteed: shares, quota and memory from the sum",
                pod: pod(
                    json!([
                        c(
                            json!({"cpu": "500m", "memory": "64Mi"}),
                            json!({"cpu": "500m", "memory": "64Mi"})
                        ),
                        c(
                            json!({"cpu": "250m", "memory": "32Mi"}),
                            json!({"cpu": "250m", "memory": "32Mi"})
                        )
                    ]),
                    json!([]),
                ),
                want: ResourceConfig {
                    cpu_shares: Some(768),
                    cpu_quota: Some(75_000),
                    memory_limit: Some(96 << 20),
                    pids_limit: Some(100),
                },
            },
            Case {
                name: "burstable with one unlimited container: no quota, no memory limit",
                pod: pod(
                    json!([c(json!({"cpu": "100m"}), json!({"cpu": "1", "memory": "1Gi"})), {"name": "b"}]),
                    json!([]),
                ),
                want: ResourceConfig {
                    cpu_shares: Some(102),
                    pids_limit: Some(100),
                    ..Default::default()
                },
            },
            Case {
                name: "a larger init container sets the pod's request",
                pod: pod(
                    json!([c(json!({"cpu": "100m"}), json!({"memory": "10Mi"}))]),
                    json!([c(json!({"cpu": "2"}), json!({"memory": "20Mi"}))]),
                ),
                want: ResourceConfig {
                    cpu_shares: Some(2048),
                    memory_limit: Some(20 << 20),
                    pids_limit: Some(100),
                    ..Default::default()
                },
            },
        ];
        for case in cases {
            assert_eq!(pod_config(&case.pod, 100), case.want, "{}", case.name);
        }
        let unlimited = pod_config(&pod(json!([{"name": "a"}]), json!([])), -1);
        assert_eq!(unlimited.pids_limit, None, "podPidsLimit -1 is no limit");
        // Pod-level resources stand for the containers'.
        let mut p = pod(json!([c(json!({"cpu": "100m"}), json!({}))]), json!([]));
        p.spec.as_mut().unwrap().resources = Some(
            serde_json::from_value(
                json!({"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
            )
            .unwrap(),
        );
        let got = pod_config(&p, 0);
        assert_eq!(
            (got.cpu_shares, got.cpu_quota, got.memory_limit),
            (Some(1024), Some(200_000), Some(1 << 30))
        );
    }

    #[test]
    fn node_allocatable_and_qos() {
        let cap = BTreeMap::from([
            ("cpu".to_string(), 2000),
            ("memory".to_string(), 4 << 30),
            ("pid".to_string(), 32768),
        ]);
        let reserved = BTreeMap::from([
            ("cpu".to_string(), 500),
            ("memory".to_string(), 1 << 30),
            ("pid".to_string(), 1000),
        ]);
        let enforced = node_allocatable_config(&cap, &reserved, true);
        assert_eq!(
            enforced,
            ResourceConfig {
                cpu_shares: Some(1536),
                cpu_quota: None,
                memory_limit: Some(3 << 30),
                pids_limit: Some(31768),
            }
        );
        let not = node_allocatable_config(&cap, &reserved, false);
        assert_eq!(not.memory_limit, Some(4 << 30));
        let pods = [
            pod(json!([c(json!({"cpu": "300m"}), json!({}))]), json!([])),
            pod(json!([c(json!({"cpu": "200m"}), json!({}))]), json!([])),
            pod(json!([{"name": "be"}]), json!([])),
        ];
        assert_eq!(burstable_shares(pods.iter()), 512);
        assert_eq!(burstable_shares([].iter()), MIN_SHARES);
        assert_eq!(
            (
                shares_to_weight(2),
                shares_to_weight(1024),
                shares_to_weight(262_144)
            ),
            (1, 39, 10_000)
        );
    }
}
