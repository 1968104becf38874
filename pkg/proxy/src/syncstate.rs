//! The partial-sync bookkeeping both proxiers share (upstream's `needFullSync`): what the
//! kernel holds after the last successful sync, and when the last full sync was.

use crate::metrics::METRICS;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct SyncState<T>(Mutex<Option<(T, Instant)>>);

impl<T> Default for SyncState<T> {
    fn default() -> Self {
        SyncState(Mutex::new(None))
    }
}

impl<T: Clone> SyncState<T> {
    /// One sync. `apply` is given what the kernel holds (None: nothing is known, replace it
    /// all) and whether the sync is partial, and returns what it left there. Once `period`
    /// has passed since the last full sync it gets `rewrite_all` of the state instead (the
    /// periodic full resync); a failure forgets the state, so the next sync starts over.
    pub fn sync<R>(
        &self,
        period: Duration,
        rewrite_all: impl Fn(&T) -> T,
        apply: impl FnOnce(Option<&T>, bool) -> Result<(T, R), String>,
    ) -> Result<R, String> {
        let started = Instant::now();
        let mut state = self.0.lock().unwrap();
        let (previous, full_at) = match state.as_ref() {
            Some((s, at)) if at.elapsed() < period => (Some(s.clone()), Some(*at)),
            Some((s, _)) => (Some(rewrite_all(s)), None),
            None => (None, None),
        };
        let partial = full_at.is_some();
        match apply(previous.as_ref(), partial) {
            Ok((now, out)) => {
                *state = Some((now, full_at.unwrap_or(started)));
                let took = started.elapsed().as_secs_f64();
                if partial {
                    METRICS.sync_partial_duration.observe(took);
                } else {
                    METRICS.sync_full_duration.observe(took);
                }
                Ok(out)
            }
            Err(e) => {
                *state = None;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_until_the_period_passes_or_a_failure() {
        let s: SyncState<u32> = SyncState::default();
        let seen = |s: &SyncState<u32>, period| {
            let mut got = None;
            s.sync(
                period,
                |v| v + 100,
                |prev, partial| {
                    got = Some((prev.copied(), partial));
                    Ok((1, ()))
                },
            )
            .unwrap();
            got.unwrap()
        };
        let long = Duration::from_secs(3600);
        assert_eq!(seen(&s, long), (None, false), "first sync: nothing known");
        assert_eq!(seen(&s, long), (Some(1), true));
        assert_eq!(
            seen(&s, Duration::ZERO),
            (Some(101), false),
            "periodic resync"
        );
        assert!(
            s.sync(long, |v| *v, |_, _| Err::<(u32, ()), _>("boom".into()))
                .is_err()
        );
        assert_eq!(seen(&s, long), (None, false), "after a failure");
    }
}
