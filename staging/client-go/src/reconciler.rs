//! The one controller runtime (upstream's controller shape — informers, a rate-limited
//! work queue, `processNextWorkItem` — with kube-rs's `Action`): a controller says what
//! it waits for and how to sync one key; `run_workers` owns the queue discipline.

use crate::informer::HasSynced;
use crate::workqueue::Queue;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a successful sync asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change to the key's objects.
    AwaitChange,
    /// Sync the key again after this long (e.g. a deadline or a timed check).
    RequeueAfter(Duration),
}

impl From<()> for Action {
    fn from(_: ()) -> Self {
        Action::AwaitChange
    }
}

impl From<Option<Duration>> for Action {
    fn from(d: Option<Duration>) -> Self {
        d.map_or(Action::AwaitChange, Action::RequeueAfter)
    }
}

/// A controller: the informers it needs, its queue, and the sync of one key.
pub trait Reconciler: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;

    /// Upstream's controller name (logs).
    fn name(&self) -> &str;

    /// The queue its informer handlers feed.
    fn queue(&self) -> &Arc<Queue>;

    /// The informers whose first list must be stored before any sync.
    fn informers(&self) -> Vec<Arc<dyn HasSynced>>;

    /// Brings the world in line with the key's desired state, once.
    fn sync(&self, key: &str) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Runs once the informers are synced, before the workers (initial keys, a
    /// periodic resync, state rebuilt from the store).
    fn on_synced(self: &Arc<Self>)
    where
        Self: Sized,
    {
    }

    /// Failures after which a key is dropped until its next change (upstream's
    /// per-controller `maxRetries`); None retries for as long as it fails.
    fn max_retries(&self) -> Option<u32> {
        None
    }
}

/// Waits for the informers, then runs `workers` workers until the queue shuts down.
pub async fn run_workers<R: Reconciler>(r: Arc<R>, workers: usize) {
    tracing::info!(controller = r.name(), "Starting controller");
    wait_for_caches(r.name(), &r.informers()).await;
    r.on_synced();
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| tokio::spawn(worker(r.clone())))
        .collect();
    futures::future::join_all(tasks).await;
}

/// Upstream's `WaitForNamedCacheSync`.
pub async fn wait_for_caches(name: &str, informers: &[Arc<dyn HasSynced>]) {
    tracing::info!(controller = name, "Waiting for caches to sync");
    for i in informers {
        let mut rx = i.synced_rx();
        let _ = rx.wait_for(|done| *done).await;
    }
    tracing::info!(controller = name, "Caches are synced");
}

/// Upstream's `processNextWorkItem`, until the queue shuts down.
async fn worker<R: Reconciler>(r: Arc<R>) {
    let queue = r.queue().clone();
    while let Some(key) = queue.get().await {
        match r.sync(&key).await {
            Ok(action) => {
                queue.forget(&key);
                if let Action::RequeueAfter(d) = action {
                    queue.add_after(key.clone(), d);
                }
            }
            Err(e) => match r.max_retries() {
                Some(max) if queue.num_requeues(&key) >= max => {
                    tracing::warn!(controller = r.name(), key, error = %e, "Dropping key out of the queue");
                    queue.forget(&key);
                }
                _ => {
                    tracing::warn!(controller = r.name(), key, error = %e, "sync failed; retrying");
                    queue.add_rate_limited(key.clone());
                }
            },
        }
        queue.done(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails `fail` times per key, then asks for a requeue once.
    struct Flaky {
        queue: Arc<Queue>,
        fail: u32,
        max: Option<u32>,
        calls: Mutex<Vec<String>>,
    }

    impl Reconciler for Flaky {
        type Error = String;
        fn name(&self) -> &str {
            "flaky"
        }
        fn queue(&self) -> &Arc<Queue> {
            &self.queue
        }
        fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
            vec![]
        }
        fn max_retries(&self) -> Option<u32> {
            self.max
        }
        async fn sync(&self, key: &str) -> Result<Action, String> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(key.to_string());
                calls.len() as u32
            };
            if n <= self.fail {
                return Err(format!("failure {n}"));
            }
            Ok(if n == self.fail + 1 {
                Action::RequeueAfter(Duration::from_millis(1))
            } else {
                Action::AwaitChange
            })
        }
    }

    async fn calls_after(fail: u32, max: Option<u32>) -> usize {
        let r = Arc::new(Flaky {
            queue: Queue::new(),
            fail,
            max,
            calls: Mutex::default(),
        });
        r.queue.add("a".into());
        let run = tokio::spawn(run_workers(r.clone(), 2));
        tokio::time::sleep(Duration::from_millis(300)).await;
        r.queue.shut_down();
        let _ = run.await;
        r.calls.lock().unwrap().len()
    }

    #[tokio::test]
    async fn failures_retry_with_backoff_until_the_limit_and_requeues_come_back() {
        // (failures, max retries, syncs seen): 2 failures + the requeue-asking success
        // + the requeued sync; a limit of 1 drops the key after its second failure.
        for (fail, max, want) in [(0, None, 2), (2, None, 4), (2, Some(5), 4), (3, Some(1), 2)] {
            assert_eq!(
                calls_after(fail, max).await,
                want,
                "fail={fail} max={max:?}"
            );
        }
    }
}
