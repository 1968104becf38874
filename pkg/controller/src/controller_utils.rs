//! Helpers shared by the workload controllers (upstream `controller_utils.go`):
//! expectations that keep a controller from acting twice on creations/deletions it has
//! not observed yet, controller references, and upstream's ranking of pods to delete.

use client_go::informer::Change;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's `ExpectationsTimeout`: unobserved expectations are dropped after it.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Default)]
pub struct Expectations {
    /// key -> (creations, deletions still to be observed, when set).
    pending: Mutex<HashMap<String, (i64, i64, Instant)>>,
}

impl Expectations {
    pub fn expect(&self, key: &str, adds: i64, dels: i64) {
        self.pending
            .lock()
            .unwrap()
            .insert(key.to_string(), (adds, dels, Instant::now()));
    }

    /// Adds to what is outstanding (for controllers that act one pod at a time).
    pub fn raise(&self, key: &str, adds: i64, dels: i64) {
        let mut pending = self.pending.lock().unwrap();
        let e = pending
            .entry(key.to_string())
            .or_insert((0, 0, Instant::now()));
        e.0 = e.0.max(0) + adds;
        e.1 = e.1.max(0) + dels;
        e.2 = Instant::now();
    }

    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.pending.lock().unwrap().get_mut(key) {
            e.0 -= 1;
        }
    }

    pub fn deletion_observed(&self, key: &str) {
        if let Some(e) = self.pending.lock().unwrap().get_mut(key) {
            e.1 -= 1;
        }
    }

    /// True when nothing is outstanding (or it expired): the controller may act.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.pending.lock().unwrap().get(key) {
            None => true,
            Some((a, d, at)) => (*a <= 0 && *d <= 0) || at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    pub fn delete(&self, key: &str) {
        self.pending.lock().unwrap().remove(key);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    Created,
    Deleted,
    Nothing,
}

/// What a pod change means for expectations: each pod's creation and its deletion (a
/// deletionTimestamp or its removal, whichever is seen first) count once.
pub fn observed(change: &Change<'_, Pod>) -> Observed {
    let terminating = |p: &Pod| p.metadata.deletion_timestamp.is_some();
    match change {
        Change::Added(p) if terminating(p) => Observed::Deleted,
        Change::Added(_) => Observed::Created,
        Change::Updated { old, new } if !terminating(old) && terminating(new) => Observed::Deleted,
        Change::Updated { .. } => Observed::Nothing,
        Change::Deleted(_, Some(seen)) if terminating(seen) => Observed::Nothing,
        Change::Deleted(..) => Observed::Deleted,
    }
}

impl Observed {
    /// Records the observation against `key`'s expectations.
    pub fn record(&self, exp: &Expectations, key: &str) {
        match self {
            Observed::Created => exp.creation_observed(key),
            Observed::Deleted => exp.deletion_observed(key),
            Observed::Nothing => {}
        }
    }
}

/// An event's `regarding` reference to a typed object.
pub fn reference<K: kube::Resource<DynamicType = ()>>(o: &K) -> ObjectReference {
    o.object_ref(&())
}

/// Upstream's `GetScaledValueFromIntOrPercent`: an int as is, or a percentage of
/// `total` rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let p: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let v = p * f64::from(total) / 100.0;
            (if round_up { v.ceil() } else { v.floor() }) as i32
        }
    }
}

/// The owner reference marked as the controller, if any.
pub fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// The owners of `kind` a change concerns, as work-queue keys: the current controller
/// and, when an update moved the object to another controller or released it, the
/// previous one too (upstream's `updatePod`: both must recount).
pub struct OwnerKeys {
    pub current: Option<String>,
    pub previous: Option<String>,
}

impl OwnerKeys {
    pub fn of<K: kube::Resource>(change: &Change<'_, K>, kind: &str) -> OwnerKeys {
        let key = |o: &K| {
            let m = o.meta();
            controller_of(m).filter(|r| r.kind == kind).map(|r| {
                let ns = m.namespace.as_deref().unwrap_or_default();
                (r.uid.clone(), format!("{ns}/{}", r.name))
            })
        };
        let current = key(change.object());
        let previous = match change {
            Change::Updated { old, .. } => {
                key(old).filter(|(uid, _)| current.as_ref().is_none_or(|(now, _)| now != uid))
            }
            _ => None,
        };
        OwnerKeys {
            current: current.map(|(_, k)| k),
            previous: previous.map(|(_, k)| k),
        }
    }

    /// Both keys, the current first.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.current.iter().chain(self.previous.iter())
    }
}

pub fn is_active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    p.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready for at least `min_ready_seconds`.
pub fn is_available(p: &Pod, min_ready_seconds: i32) -> bool {
    available_in(p, min_ready_seconds) == Some(Duration::ZERO)
}

/// How long until a ready pod has been ready for `min_ready_seconds` (zero once it is
/// available); None for a pod that is not ready.
pub fn available_in(p: &Pod, min_ready_seconds: i32) -> Option<Duration> {
    let c = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    // A ready condition without a transition time counts as ready since just now.
    let ready_for = c.last_transition_time.as_ref().map_or(0, |t| {
        jiff::Timestamp::now()
            .duration_since(t.0)
            .as_millis()
            .max(0) as u64
    });
    let needed = u64::from(min_ready_seconds.unsigned_abs()) * 1000;
    Some(Duration::from_millis(needed.saturating_sub(ready_for)))
}

/// When a controller with `min_ready_seconds` must look at its pods again: as soon as the
/// first ready pod that is not available yet becomes available (upstream requeues after
/// `minReadySeconds`, which this never exceeds). 100 ms on top absorb clock rounding.
pub fn recheck_availability<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    min_ready_seconds: i32,
) -> Option<Duration> {
    pods.into_iter()
        .filter_map(|p| available_in(p, min_ready_seconds))
        .filter(|d| !d.is_zero())
        .min()
        .map(|d| d + Duration::from_millis(100))
}

/// Upstream's `ActivePods` order for deletion: the ones to delete first sort first —
/// unassigned before assigned, pending before unknown before running, not ready before
/// ready, recently ready before long ready, more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let restarts = |p: &Pod| -> i32 {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c.iter().map(|c| c.restart_count).max().unwrap_or(0))
            .unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(restarts(b).cmp(&restarts(a)))
        .then(created(b).cmp(&created(a)))
}

/// RFC 7386 JSON merge patch applied in place.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Writes status as upstream's controllers do, with `UpdateStatus` (PUT, the verb the
/// `system:controller:*` roles grant): the cached object with `patch` merged in,
/// guarded by its resourceVersion so a stale view fails with a conflict and is retried.
pub async fn update_status<K>(
    api: &kube::Api<K>,
    obj: &K,
    patch: &serde_json::Value,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut v = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    merge_patch(&mut v, patch);
    let next: K = serde_json::from_value(v).map_err(|e| e.to_string())?;
    let name = obj.meta().name.clone().unwrap_or_default();
    match api
        .replace_status(&name, &kube::api::PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_keys_of_a_change() {
        let pod = |owner: Option<(&str, &str, &str)>| {
            let mut p = Pod::default();
            p.metadata.namespace = Some("ns".into());
            p.metadata.owner_references = owner.map(|(kind, name, uid)| {
                vec![OwnerReference {
                    kind: kind.into(),
                    name: name.into(),
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            });
            p
        };
        let (a, b) = (
            Some(("ReplicaSet", "a", "1")),
            Some(("ReplicaSet", "b", "2")),
        );
        let job = Some(("Job", "j", "3"));
        let k = |s: &str| Some(s.to_string());
        // (case, old (None: an addition), new, want current, want previous)
        let cases = [
            ("added", None, pod(a), k("ns/a"), None),
            ("unchanged", Some(pod(a)), pod(a), k("ns/a"), None),
            ("moved", Some(pod(a)), pod(b), k("ns/b"), k("ns/a")),
            ("released", Some(pod(a)), pod(None), None, k("ns/a")),
            ("adopted", Some(pod(None)), pod(a), k("ns/a"), None),
            ("other-kind", Some(pod(job)), pod(a), k("ns/a"), None),
            ("not-ours", None, pod(job), None, None),
        ];
        for (name, old, new, current, previous) in cases {
            let change = match &old {
                Some(old) => Change::Updated { old, new: &new },
                None => Change::Added(&new),
            };
            let got = OwnerKeys::of(&change, "ReplicaSet");
            assert_eq!((got.current, got.previous), (current, previous), "{name}");
        }
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(terminating: bool) -> Pod {
        let mut p = Pod::default();
        if terminating {
            p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        }
        p
    }

    #[test]
    fn each_creation_and_deletion_counts_once() {
        let (live, dying) = (pod(false), pod(true));
        let cases = [
            (Change::Added(&live), Observed::Created),
            (Change::Added(&dying), Observed::Deleted),
            (
                Change::Updated {
                    old: &live,
                    new: &live,
                },
                Observed::Nothing,
            ),
            (
                Change::Updated {
                    old: &live,
                    new: &dying,
                },
                Observed::Deleted,
            ),
            (
                Change::Updated {
                    old: &dying,
                    new: &dying,
                },
                Observed::Nothing,
            ),
            // Removed after its deletionTimestamp was seen: already counted.
            (Change::Deleted(&dying, Some(&dying)), Observed::Nothing),
            // Removed at once (grace 0): the final state has the timestamp, the last
            // copy seen did not.
            (Change::Deleted(&dying, Some(&live)), Observed::Deleted),
            (Change::Deleted(&live, None), Observed::Deleted),
        ];
        for (change, want) in cases {
            assert_eq!(observed(&change), want, "{change:?}");
        }
    }
}
