//! The kubelet's own health (upstream `syncLoopHealthCheck` and `GenericPLEG.Healthy`):
//! `/healthz` fails once the sync loop (here: housekeeping, which runs every 2 s) has
//! not completed an iteration for `max(2 × syncFrequency, 5m)`, or the PLEG has not
//! relisted the runtime for 3 minutes.
//!
//! Test hook (for tests only; never set in production): `KUBELET_TEST_HOOKS` with
//! `stall-sync-loop-after=<duration>` makes the sync loop hang after that long, and
//! `health-threshold=<duration>` replaces both thresholds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const PLEG_THRESHOLD: Duration = Duration::from_secs(180);
const MIN_SYNC_LOOP_THRESHOLD: Duration = Duration::from_secs(300);

pub struct Health {
    started: Instant,
    sync_loop: Mutex<Instant>,
    pleg: Mutex<Instant>,
    sync_threshold: Duration,
    pleg_threshold: Duration,
    stall_after: Option<Duration>,
}

/// `key=value` pairs of the test hook variable.
fn hook(hooks: &str, key: &str) -> Option<Duration> {
    hooks
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| apimachinery::duration::parse(v.trim()).ok())
}

impl Health {
    pub fn new(sync_frequency: Duration, hooks: &str) -> Self {
        let now = Instant::now();
        let threshold = hook(hooks, "health-threshold");
        Health {
            started: now,
            sync_loop: Mutex::new(now),
            pleg: Mutex::new(now),
            sync_threshold: threshold
                .unwrap_or_else(|| (sync_frequency * 2).max(MIN_SYNC_LOOP_THRESHOLD)),
            pleg_threshold: threshold.unwrap_or(PLEG_THRESHOLD),
            stall_after: hook(hooks, "stall-sync-loop-after"),
        }
    }

    /// From the environment's test hook, if any.
    pub fn from_env(sync_frequency: Duration) -> Self {
        Self::new(
            sync_frequency,
            &std::env::var("KUBELET_TEST_HOOKS").unwrap_or_default(),
        )
    }

    pub fn sync_loop_ran(&self) {
        *self.sync_loop.lock().unwrap() = Instant::now();
    }

    pub fn pleg_relisted(&self) {
        *self.pleg.lock().unwrap() = Instant::now();
    }

    /// The test hook's hang: true once the sync loop should stop.
    pub fn sync_loop_stalled(&self) -> bool {
        self.stall_after
            .is_some_and(|d| self.started.elapsed() >= d)
    }

    /// Err(the failed checks) when unhealthy.
    pub fn check(&self) -> Result<(), String> {
        let mut failed = Vec::new();
        if self.sync_loop.lock().unwrap().elapsed() > self.sync_threshold {
            failed.push("syncloop");
        }
        let pleg = self.pleg.lock().unwrap().elapsed();
        if pleg > self.pleg_threshold {
            tracing::warn!(
                "PLEG is not healthy: pleg was last seen active {pleg:?} ago; threshold is {:?}",
                self.pleg_threshold
            );
            failed.push("pleg");
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(failed
                .iter()
                .map(|c| format!("[-]{c} failed: reason withheld"))
                .collect::<Vec<_>>()
                .join("\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_hooks() {
        let h = Health::new(Duration::from_secs(60), "");
        assert_eq!(h.sync_threshold, Duration::from_secs(300));
        assert_eq!(
            Health::new(Duration::from_secs(600), "").sync_threshold,
            Duration::from_secs(1200)
        );
        assert!(h.check().is_ok() && !h.sync_loop_stalled());
        let h = Health::new(
            Duration::from_secs(60),
            "stall-sync-loop-after=0s,health-threshold=0s",
        );
        assert!(h.sync_loop_stalled());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            h.check().unwrap_err(),
            "[-]syncloop failed: reason withheld\n[-]pleg failed: reason withheld"
        );
        h.sync_loop_ran();
        h.pleg_relisted();
    }
}
