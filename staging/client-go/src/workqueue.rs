//! A rate-limited work queue (upstream `client-go/util/workqueue`): a key is queued at
//! most once, never handed to two workers at once (a key re-added while processing is
//! queued again when done), and failed keys come back after a per-item exponential
//! backoff (5 ms doubling to 1000 s) limited overall by a token bucket (10 qps, burst
//! 100), as upstream's default controller rate limiter. Named queues report upstream's
//! `workqueue_*` metrics.

use crate::workqueue_metrics::{METRICS, QueueLabel};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    /// Keys being processed, and since when.
    processing: HashMap<String, Instant>,
    /// When each queued key was added (for the queue-duration histogram).
    added: HashMap<String, Instant>,
    failures: HashMap<String, u32>,
    shutdown: bool,
    /// Overall bucket: tokens and when they were last refilled.
    tokens: f64,
    refilled: Option<Instant>,
}

pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    /// The metrics label; None for unnamed queues.
    name: Option<String>,
}

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);
const BUCKET_QPS: f64 = 10.0;
const BUCKET_BURST: f64 = 100.0;

impl Queue {
    /// An unnamed queue (no metrics).
    pub fn new() -> Arc<Self> {
        Self::build(None)
    }

    /// A queue whose metrics carry `name="<name>"` (upstream's queue names).
    pub fn named(name: &str) -> Arc<Self> {
        let q = Self::build(Some(name.to_string()));
        // Every series exists from the start, at zero, as upstream's.
        let l = QueueLabel {
            name: name.to_string(),
        };
        let _ = METRICS.depth.get_or_create(&l);
        let _ = METRICS.adds.get_or_create(&l);
        let _ = METRICS.retries.get_or_create(&l);
        let _ = METRICS.queue_duration.get_or_create(&l);
        let _ = METRICS.work_duration.get_or_create(&l);
        let _ = METRICS.unfinished.get_or_create(&l);
        let _ = METRICS.longest.get_or_create(&l);
        METRICS.queues.lock().unwrap().push(Arc::downgrade(&q));
        q
    }

    fn build(name: Option<String>) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State {
                tokens: BUCKET_BURST,
                ..Default::default()
            }),
            notify: Notify::new(),
            name,
        })
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn label(&self) -> Option<QueueLabel> {
        self.name
            .as_ref()
            .map(|name| QueueLabel { name: name.clone() })
    }

    /// Seconds of work in progress, summed and the longest.
    pub fn in_progress(&self) -> (f64, f64) {
        let st = self.state.lock().unwrap();
        let now = Instant::now();
        st.processing
            .values()
            .map(|t| now.duration_since(*t).as_secs_f64())
            .fold((0.0, 0.0), |(sum, max), s| (sum + s, f64::max(max, s)))
    }

    pub fn add(&self, key: String) {
        let mut st = self.state.lock().unwrap();
        if st.shutdown || !st.dirty.insert(key.clone()) {
            return;
        }
        if let Some(l) = self.label() {
            METRICS.adds.get_or_create(&l).inc();
        }
        if !st.processing.contains_key(&key) {
            st.added.insert(key.clone(), Instant::now());
            st.queue.push_back(key);
            self.set_depth(&st);
            drop(st);
            self.notify.notify_one();
        }
    }

    fn set_depth(&self, st: &State) {
        if let Some(l) = self.label() {
            METRICS.depth.get_or_create(&l).set(st.queue.len() as i64);
        }
    }

    /// Adds the key after `delay`.
    pub fn add_after(self: &Arc<Self>, key: String, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.add(key);
        });
    }

    /// Adds the key again after its backoff (a failed sync).
    pub fn add_rate_limited(self: &Arc<Self>, key: String) {
        if let Some(l) = self.label() {
            METRICS.retries.get_or_create(&l).inc();
        }
        let delay = {
            let mut st = self.state.lock().unwrap();
            let n = st.failures.entry(key.clone()).or_default();
            let exp = BASE_DELAY.saturating_mul(1u32.checked_shl(*n).unwrap_or(u32::MAX));
            *n += 1;
            let item = exp.min(MAX_DELAY);
            // The overall bucket spaces out bursts of failures.
            let now = Instant::now();
            let since = st
                .refilled
                .map(|t| now.duration_since(t).as_secs_f64())
                .unwrap_or(0.0);
            st.tokens = (st.tokens + since * BUCKET_QPS).min(BUCKET_BURST) - 1.0;
            st.refilled = Some(now);
            let bucket = if st.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-st.tokens / BUCKET_QPS)
            };
            item.max(bucket)
        };
        self.add_after(key, delay);
    }

    /// How many times the key failed since it last succeeded.
    pub fn num_requeues(&self, key: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// The sync succeeded: its backoff resets.
    pub fn forget(&self, key: &str) {
        self.state.lock().unwrap().failures.remove(key);
    }

    /// The next key to process (None once shut down).
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.state.lock().unwrap();
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    let now = Instant::now();
                    let added = st.added.remove(&key);
                    st.processing.insert(key.clone(), now);
                    if let Some(l) = self.label() {
                        self.set_depth(&st);
                        if let Some(t) = added {
                            let waited = now.duration_since(t).as_secs_f64();
                            METRICS.queue_duration.get_or_create(&l).observe(waited);
                        }
                    }
                    return Some(key);
                }
                if st.shutdown {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Processing of `key` finished; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &str) {
        let mut st = self.state.lock().unwrap();
        if let (Some(started), Some(l)) = (st.processing.remove(key), self.label()) {
            let took = started.elapsed().as_secs_f64();
            METRICS.work_duration.get_or_create(&l).observe(took);
        }
        if st.dirty.contains(key) {
            st.added.insert(key.to_string(), Instant::now());
            st.queue.push_back(key.to_string());
            self.set_depth(&st);
            drop(st);
            self.notify.notify_one();
        }
    }

    pub fn shut_down(&self) {
        self.state.lock().unwrap().shutdown = true;
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupes_and_requeues_keys_added_while_processing() {
        let q = Queue::new();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "a");
        q.add("a".into());
        assert_eq!(q.len(), 1, "a is processing: not queued twice");
        q.done("a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test]
    async fn failures_back_off() {
        let q = Queue::new();
        let start = Instant::now();
        for _ in 0..3 {
            q.add_rate_limited("k".into());
            let k = q.get().await.unwrap();
            q.done(&k);
        }
        // 5 + 10 + 20 ms at least.
        assert!(start.elapsed() >= Duration::from_millis(35));
        q.forget("k");
    }

    #[tokio::test]
    async fn named_queues_report_metrics() {
        let q = Queue::named("test_queue");
        q.add("a".into());
        q.add("b".into());
        let k = q.get().await.unwrap();
        q.done(&k);
        q.add_rate_limited("c".into());
        crate::workqueue_metrics::refresh();
        let mut r = prometheus_client::registry::Registry::default();
        crate::workqueue_metrics::register(&mut r);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("workqueue_adds_total{name=\"test_queue\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_depth{name=\"test_queue\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_retries_total{name=\"test_queue\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_work_duration_seconds_count{name=\"test_queue\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_longest_running_processor_seconds{name=\"test_queue\"}"),
            "{text}"
        );
    }
}
