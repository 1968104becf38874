//! The scheduling queue (upstream `backend/queue`): pods wait in activeQ (highest
//! priority, then earliest, first), in backoffQ after a failed attempt (1s doubling to
//! 10s by default), among the unschedulable until a cluster event may help them (or 5
//! minutes pass), or gated while a PreEnqueue plugin holds them.

use crate::framework::PodInfo;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upstream's `podMaxInUnschedulablePodsDuration`.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Active,
    Backoff,
    Unschedulable,
    Gated,
    InFlight,
}

#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Index of the profile (framework) that schedules it.
    pub profile: usize,
    pub location: Location,
    /// When it (re-)entered the queue: ties in priority go to the earliest.
    pub timestamp: Instant,
    pub initial_attempt: Option<Instant>,
    pub attempts: u32,
    pub unschedulable_since: Instant,
    seq: u64,
}

struct ActiveEntry {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    uid: String,
}

impl PartialEq for ActiveEntry {
    fn eq(&self, o: &Self) -> bool {
        self.seq == o.seq
    }
}
impl Eq for ActiveEntry {}
impl PartialOrd for ActiveEntry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ActiveEntry {
    /// PrioritySort: the max-heap pops higher priority, then the earlier timestamp.
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.timestamp.cmp(&self.timestamp))
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

pub struct Queue {
    pods: HashMap<String, QueuedPod>,
    active: BinaryHeap<ActiveEntry>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    initial_backoff: Duration,
    max_backoff: Duration,
    next_seq: u64,
    /// A move request arrived while pods were in flight: their failures go to backoff
    /// rather than unschedulable (the event might have helped them).
    moved_since_pop: HashMap<String, bool>,
}

/// Pods per queue, for `scheduler_pending_pods`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

impl Queue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> Self {
        Queue {
            pods: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            initial_backoff,
            max_backoff,
            next_seq: 0,
            moved_since_pop: HashMap::new(),
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn push_active(&mut self, uid: &str) {
        let seq = self.seq();
        let Some(qp) = self.pods.get_mut(uid) else {
            return;
        };
        qp.location = Location::Active;
        qp.seq = seq;
        self.active.push(ActiveEntry {
            priority: qp.info.priority,
            timestamp: qp.timestamp,
            seq,
            uid: uid.to_string(),
        });
    }

    fn push_backoff(&mut self, uid: &str) {
        let seq = self.seq();
        let Some(qp) = self.pods.get_mut(uid) else {
            return;
        };
        qp.location = Location::Backoff;
        qp.seq = seq;
        let expiry = qp.unschedulable_since
            + backoff_duration(self.initial_backoff, self.max_backoff, qp.attempts);
        self.backoff.push(Reverse((expiry, seq, uid.to_string())));
    }

    /// A new pending pod; `gated` when a PreEnqueue plugin holds it.
    pub fn add(&mut self, info: Arc<PodInfo>, profile: usize, gated: bool) {
        let uid = info.uid.clone();
        if let Some(qp) = self.pods.get_mut(&uid) {
            qp.info = info;
            return;
        }
        let now = Instant::now();
        self.pods.insert(
            uid.clone(),
            QueuedPod {
                info,
                profile,
                location: Location::Gated,
                timestamp: now,
                initial_attempt: None,
                attempts: 0,
                unschedulable_since: now,
                seq: 0,
            },
        );
        if !gated {
            self.push_active(&uid);
        }
    }

    /// A pending pod changed: a gated pod whose gates are gone and an unschedulable pod
    /// (the change may make it fit) go back to being scheduled.
    pub fn update(&mut self, info: Arc<PodInfo>, gated: bool) {
        let uid = info.uid.clone();
        let Some(qp) = self.pods.get_mut(&uid) else {
            return;
        };
        qp.info = info;
        match qp.location {
            Location::Gated if !gated => {
                qp.timestamp = Instant::now();
                self.push_active(&uid);
            }
            Location::Unschedulable if !gated => self.requeue(&uid),
            _ => {}
        }
    }

    pub fn delete(&mut self, uid: &str) {
        self.pods.remove(uid);
        self.moved_since_pop.remove(uid);
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The next pod to schedule, now in flight.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(e) = self.active.pop() {
            let Some(qp) = self.pods.get_mut(&e.uid) else {
                continue;
            };
            if qp.seq != e.seq || qp.location != Location::Active {
                continue;
            }
            qp.location = Location::InFlight;
            qp.attempts += 1;
            qp.initial_attempt.get_or_insert_with(Instant::now);
            self.moved_since_pop.insert(e.uid.clone(), false);
            return Some(qp.clone());
        }
        None
    }

    /// A pod that could not be placed: unschedulable, or back off at once when a
    /// cluster event arrived during its attempt.
    pub fn add_unschedulable(&mut self, uid: &str) {
        let moved = self.moved_since_pop.remove(uid).unwrap_or(false);
        let Some(qp) = self.pods.get_mut(uid) else {
            return;
        };
        qp.unschedulable_since = Instant::now();
        qp.timestamp = qp.unschedulable_since;
        if moved {
            self.push_backoff(uid);
        } else {
            qp.location = Location::Unschedulable;
        }
    }

    /// A pod whose attempt failed with an error (or a failed bind): back off.
    pub fn add_backoff(&mut self, uid: &str) {
        self.moved_since_pop.remove(uid);
        let Some(qp) = self.pods.get_mut(uid) else {
            return;
        };
        qp.unschedulable_since = Instant::now();
        qp.timestamp = qp.unschedulable_since;
        self.push_backoff(uid);
    }

    /// The pod was bound: it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        self.delete(uid);
    }

    fn requeue(&mut self, uid: &str) {
        let Some(qp) = self.pods.get(uid) else { return };
        let expiry = qp.unschedulable_since
            + backoff_duration(self.initial_backoff, self.max_backoff, qp.attempts);
        if expiry > Instant::now() {
            self.push_backoff(uid);
        } else {
            self.push_active(uid);
        }
    }

    /// A cluster event that may make unschedulable pods fit (a node added or changed, a
    /// bound pod deleted): every one of them is retried, after its backoff.
    pub fn move_all_to_active_or_backoff(&mut self) {
        let waiting: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, qp)| qp.location == Location::Unschedulable)
            .map(|(u, _)| u.clone())
            .collect();
        for uid in waiting {
            self.requeue(&uid);
        }
        for moved in self.moved_since_pop.values_mut() {
            *moved = true;
        }
    }

    /// Moves pods whose backoff ended to activeQ, and pods unschedulable for 5 minutes
    /// back to being tried. Returns when the next backoff ends.
    pub fn flush(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((expiry, seq, uid))) = self.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            self.backoff.pop();
            if self
                .pods
                .get(&uid)
                .is_some_and(|qp| qp.seq == seq && qp.location == Location::Backoff)
            {
                self.push_active(&uid);
            }
        }
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, qp)| {
                qp.location == Location::Unschedulable
                    && now.duration_since(qp.unschedulable_since) > MAX_IN_UNSCHEDULABLE
            })
            .map(|(u, _)| u.clone())
            .collect();
        for uid in stale {
            self.requeue(&uid);
        }
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    pub fn pending(&self) -> Pending {
        let mut p = Pending::default();
        for qp in self.pods.values() {
            match qp.location {
                Location::Active => p.active += 1,
                Location::Backoff => p.backoff += 1,
                Location::Unschedulable => p.unschedulable += 1,
                Location::Gated => p.gated += 1,
                Location::InFlight => {}
            }
        }
        p
    }
}

/// `initial * 2^(attempts-1)`, at most `max`.
pub fn backoff_duration(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let mut d = initial;
    for _ in 1..attempts {
        d = d.saturating_mul(2);
        if d >= max {
            return max;
        }
    }
    d.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "d", "uid": name},
            "spec": {"priority": priority, "containers": []}}))
        .unwrap();
        PodInfo::new(Arc::new(pod))
    }

    #[test]
    fn priority_then_arrival_order() {
        let mut q = Queue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add(info("low", 0), 0, false);
        q.add(info("high", 100), 0, false);
        q.add(info("low2", 0), 0, false);
        q.add(info("gated", 1000), 0, true);
        let order: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|p| p.info.uid.clone())
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
        assert_eq!(q.pending().gated, 1);
    }

    #[test]
    fn unschedulable_until_moved_then_backoff() {
        let mut q = Queue::new(Duration::from_secs(1), Duration::from_secs(10));
        q.add(info("p", 0), 0, false);
        let p = q.pop().unwrap();
        q.add_unschedulable(&p.info.uid);
        assert_eq!(q.pending().unschedulable, 1);
        q.move_all_to_active_or_backoff();
        assert_eq!(q.pending().backoff, 1);
        assert!(q.pop().is_none());
        let next = q.flush(Instant::now()).unwrap();
        q.flush(next + Duration::from_millis(1));
        assert_eq!(q.pop().unwrap().attempts, 2);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let (i, m) = (Duration::from_secs(1), Duration::from_secs(10));
        let secs: Vec<u64> = (1..=6)
            .map(|a| backoff_duration(i, m, a).as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }
}
