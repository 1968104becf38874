//! `--max-requests-inflight` / `--max-mutating-requests-inflight` (upstream's
//! `WithMaxInFlightLimit`): past the limit a request is refused at once with 429 and
//! `Retry-After: 1`, so clients back off instead of piling up. Long-running requests
//! (watch, exec, attach, port-forward, logs, proxy) are not counted.

use crate::endpoints::request::RequestInfo;
use apimachinery::StatusError;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct InflightLimits {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

fn limit(n: usize) -> Option<Arc<Semaphore>> {
    (n > 0).then(|| Arc::new(Semaphore::new(n)))
}

/// Upstream's `BasicLongRunningRequestCheck` with the apiserver's verbs and subresources.
pub fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        )
}

impl InflightLimits {
    pub fn new(max_read_only: usize, max_mutating: usize) -> Self {
        Self {
            read_only: limit(max_read_only),
            mutating: limit(max_mutating),
        }
    }

    /// A slot for this request (held until it is answered), or the 429 to send.
    pub fn admit(
        &self,
        method: &str,
        info: &RequestInfo,
    ) -> Result<Option<OwnedSemaphorePermit>, StatusError> {
        if is_long_running(info) {
            return Ok(None);
        }
        let sem = if matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") {
            &self.mutating
        } else {
            &self.read_only
        };
        match sem {
            None => Ok(None),
            Some(s) => s
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| StatusError::too_many_requests(1)),
        }
    }
}
