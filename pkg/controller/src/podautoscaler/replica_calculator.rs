//! Desired replicas from resource metrics (upstream `podautoscaler/replica_calculator.go`):
//! the pods' usage from `metrics.k8s.io` against their requests (Utilization) or against
//! an average value, scaled as `ceil(ratio * pods)`, and unchanged within the tolerance.

use apimachinery::resource::Quantity;
use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;

/// What a Resource metric computed: the replica count and the current value
/// (utilization percent when the target is one, and the average in milli-units).
pub struct Computed {
    pub replicas: i32,
    pub utilization: Option<i32>,
    pub average_milli: i64,
}

/// A pod's requests for `resource`: its containers' and sidecars' (restartable init
/// containers'), an error naming the container that has none.
pub fn pod_request_milli(pod: &Pod, resource: &str) -> Result<i64, String> {
    let spec = pod.spec.as_ref().ok_or("pod without spec")?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let mut total = 0;
    for c in spec.containers.iter().chain(sidecars) {
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| Quantity::parse(&q.0));
        match q {
            Some(q) => total += q.milli_value(),
            None => {
                return Err(format!(
                    "missing request for {resource} in container {} of Pod {}",
                    c.name,
                    pod.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    Ok(total)
}

/// Usage per pod name (milli-units) from a `metrics.k8s.io` PodMetricsList.
pub fn usage_by_pod(list: &serde_json::Value, resource: &str) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let Some(name) = item["metadata"]["name"].as_str() else {
            continue;
        };
        let total: i64 = item["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Quantity::from_json(&c["usage"][resource]))
            .map(|q| q.milli_value())
            .sum();
        out.insert(name.to_string(), total);
    }
    out
}

fn running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Replicas for a Utilization target (percent of request).
pub fn for_utilization(
    current: i32,
    target_percent: i32,
    pods: &[Pod],
    usage: &HashMap<String, i64>,
    resource: &str,
    tolerance: f64,
) -> Result<Computed, String> {
    let (mut used, mut requested, mut counted) = (0i64, 0i64, 0i32);
    for p in pods.iter().filter(|p| running(p)) {
        let Some(u) = usage.get(p.metadata.name.as_deref().unwrap_or_default()) else {
            continue;
        };
        used += u;
        requested += pod_request_milli(p, resource)?;
        counted += 1;
    }
    if counted == 0 || requested == 0 {
        return Err(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        ));
    }
    let utilization = (used * 100 / requested) as i32;
    let ratio = f64::from(utilization) / f64::from(target_percent.max(1));
    Ok(Computed {
        replicas: scale(current, ratio, counted, tolerance),
        utilization: Some(utilization),
        average_milli: used / i64::from(counted),
    })
}

/// Replicas for an AverageValue target (milli-units per pod).
pub fn for_average_value(
    current: i32,
    target_milli: i64,
    pods: &[Pod],
    usage: &HashMap<String, i64>,
    resource: &str,
    tolerance: f64,
) -> Result<Computed, String> {
    let (mut used, mut counted) = (0i64, 0i32);
    for p in pods.iter().filter(|p| running(p)) {
        if let Some(u) = usage.get(p.metadata.name.as_deref().unwrap_or_default()) {
            used += u;
            counted += 1;
        }
    }
    if counted == 0 {
        return Err(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        ));
    }
    let average = used / i64::from(counted);
    let ratio = average as f64 / target_milli.max(1) as f64;
    Ok(Computed {
        replicas: scale(current, ratio, counted, tolerance),
        utilization: None,
        average_milli: average,
    })
}

/// Upstream's rule: within the tolerance nothing changes, otherwise
/// `ceil(ratio * pods with metrics)`.
fn scale(current: i32, ratio: f64, counted: i32, tolerance: f64) -> i32 {
    if (1.0 - ratio).abs() <= tolerance {
        return current;
    }
    (ratio * f64::from(counted)).ceil() as i32
}

#[cfg(test)]
mod tests {
    use super::scale;

    #[test]
    fn ceil_of_ratio_outside_the_tolerance() {
        // 2 pods at 100 % of a 50 % target: 4.
        assert_eq!(scale(2, 2.0, 2, 0.1), 4);
        // Within 10 %: unchanged.
        assert_eq!(scale(3, 1.08, 3, 0.1), 3);
        // 4 pods at 20 % of 50 %: ceil(1.6) = 2.
        assert_eq!(scale(4, 0.4, 4, 0.1), 2);
    }
}
