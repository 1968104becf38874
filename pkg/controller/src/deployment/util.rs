//! Deployment helpers (upstream `deployment/util`): the pod-template hash, maxSurge /
//! maxUnavailable resolution, and the revision annotations.

use crate::controller_utils::scaled_value;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";

/// Characters upstream's `rand.SafeEncodeString` uses (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable hash of the template (FNV-32a over its JSON, with the collision count),
/// encoded with upstream's alphabet. The format matches upstream; the bytes hashed are
/// not Go's, so the strings differ from an upstream controller's.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut t = template.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(POD_TEMPLATE_HASH);
    }
    let json = serde_json::to_vec(&t).unwrap_or_default();
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    };
    json.iter().for_each(|b| feed(*b));
    if let Some(c) = collision_count {
        c.to_le_bytes().iter().for_each(|b| feed(*b));
    }
    h.to_string()
        .bytes()
        .map(|d| ALPHANUMS[d as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// An int or a percentage of `total` (`default` when unset).
fn resolve(v: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    let default = IntOrString::String(default.into());
    scaled_value(v.unwrap_or(&default), total, round_up)
}

/// (maxSurge, maxUnavailable): surge rounds up, unavailable down, both 25% by default;
/// both zero would block a rollout, so unavailable becomes 1.
pub fn surge_and_unavailable(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), "25%", desired, true);
    let mut unavailable = resolve(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        "25%",
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(desired))
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn int_annotation(rs: &ReplicaSet, name: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(name)?.parse().ok()
}

/// The deployment size the set was last scaled for.
pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, DESIRED_REPLICAS)
}

/// The deployment size plus surge the set was last scaled for.
pub fn max_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, MAX_REPLICAS)
}

/// Upstream's `isScalingEvent`: an active set was sized for another replica count.
pub fn is_scaling_event(d: &Deployment, sets: &[std::sync::Arc<ReplicaSet>]) -> bool {
    let desired = replicas(d);
    sets.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .any(|rs| desired_annotation(rs).is_some_and(|n| n != desired))
}

/// Upstream's `getReplicaSetFraction`: how many replicas this set gains (or loses)
/// when the deployment is resized, in proportion to its share.
pub fn set_fraction(rs: &ReplicaSet, d: &Deployment, surge: i32) -> i32 {
    let desired = replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let size = desired + surge;
    let annotated = max_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        return 0;
    }
    let new_size = f64::from(rs_replicas(rs)) * f64::from(size) / f64::from(annotated);
    new_size.round() as i32 - rs_replicas(rs)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_unavailable_down() {
        let p = |s: &str, total, up| scaled_value(&IntOrString::String(s.into()), total, up);
        assert_eq!(p("25%", 3, true), 1);
        assert_eq!(p("25%", 3, false), 0);
        assert_eq!(p("25%", 10, true), 3);
        assert_eq!(p("25%", 10, false), 2);
    }

    #[test]
    fn hashes_ignore_the_hash_label_and_use_the_alphabet() {
        let t: PodTemplateSpec = serde_json::from_value(serde_json::json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap();
        let mut labelled = t.clone();
        labelled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), "x".into());
        assert_eq!(template_hash(&t, None), template_hash(&labelled, None));
        assert_ne!(template_hash(&t, None), template_hash(&t, Some(1)));
        assert!(
            template_hash(&t, None)
                .bytes()
                .all(|b| ALPHANUMS.contains(&b))
        );
    }
}
