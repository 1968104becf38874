//! A rate-limited work queue (upstream `client-go/util/workqueue`): a key is queued at
//! most once, never handed to two workers at once (a key re-added while processing is
//! queued again when done), and failed keys come back after a per-item exponential
//! backoff (5 ms doubling to 1000 s) limited overall by a token bucket (10 qps, burst
//! 100), as upstream's default controller rate limiter.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
    shutdown: bool,
    /// Overall bucket: tokens and when they were last refilled.
    tokens: f64,
    refilled: Option<Instant>,
}

pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
}

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);
const BUCKET_QPS: f64 = 10.0;
const BUCKET_BURST: f64 = 100.0;

impl Queue {
    pub fn new() -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State {
                tokens: BUCKET_BURST,
                ..Default::default()
            }),
            notify: Notify::new(),
        })
    }

    pub fn add(&self, key: String) {
        let mut st = self.state.lock().unwrap();
        if st.shutdown || !st.dirty.insert(key.clone()) {
            return;
        }
        if !st.processing.contains(&key) {
            st.queue.push_back(key);
            drop(st);
            self.notify.notify_one();
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
                    st.processing.insert(key.clone());
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
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.to_string());
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
}
