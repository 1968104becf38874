//! Image pulls (upstream `pkg/kubelet/images`): `imagePullPolicy` (Always, IfNotPresent,
//! Never; `:latest` or untagged defaults to Always), one pull at a time with
//! `serializeImagePulls` (else up to `maxParallelImagePulls`), and a per-image back-off
//! of 10 s doubling to 5 min after a failed pull, during which the container waits with
//! `ImagePullBackOff`.

use crate::cri::remote::RemoteRuntime;
use k8s_openapi::api::core::v1::Container;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);

/// Why a container waits on its image: (reason, message).
pub type PullError = (String, String);

pub struct ImageManager {
    /// `<pod uid>_<image>` -> (retry not before, current back-off).
    backoff: Mutex<HashMap<String, (Instant, Duration)>>,
    /// Pulls running at once: one with `serializeImagePulls`, else
    /// `maxParallelImagePulls` (unbounded when unset).
    pulls: Option<tokio::sync::Semaphore>,
}

impl ImageManager {
    pub fn new(serialize: bool, max_parallel: Option<i32>) -> Self {
        let permits = match (serialize, max_parallel) {
            (true, _) => Some(1),
            (false, Some(n)) if n > 0 => Some(n as usize),
            _ => None,
        };
        ImageManager {
            backoff: Mutex::default(),
            pulls: permits.map(tokio::sync::Semaphore::new),
        }
    }
}

/// Upstream's default: Always for `:latest` or untagged images, else IfNotPresent.
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = c.image_pull_policy.clone().filter(|p| !p.is_empty()) {
        return p;
    }
    let image = c.image.clone().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or_default();
    if image.contains('@') {
        return "IfNotPresent".into();
    }
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always".into(),
        _ => "IfNotPresent".into(),
    }
}

pub enum Pulled {
    /// Image present (true if this call pulled it).
    Ready {
        pulled: bool,
        /// The pull itself, and with the wait for a pull slot.
        took: Duration,
        took_with_waiting: Duration,
        /// The runtime's record of the image.
        image: Option<Box<crate::cri::api::Image>>,
    },
    Failed(PullError),
}

impl ImageManager {
    /// `auths`: the pod's pull credentials for this image, tried in order (none: an
    /// anonymous pull); looked up only when a pull is needed.
    /// The back-off is per pod and image (upstream's `<pod uid>_<image>` key): one pod's
    /// failed pulls (e.g. without credentials) do not hold back another's.
    pub async fn ensure(
        &self,
        rt: &RemoteRuntime,
        pod_uid: &str,
        c: &Container,
        auths: impl Future<Output = Vec<crate::cri::api::AuthConfig>>,
        pulling: impl FnOnce(),
    ) -> Pulled {
        let image = c.image.clone().unwrap_or_default();
        let key = format!("{pod_uid}_{image}");
        let policy = pull_policy(c);
        let status = rt.image_status(&image).await.ok().flatten();
        let present = status.is_some();
        if policy == "Never" {
            return if present {
                Pulled::Ready {
                    pulled: false,
                    took: Duration::ZERO,
                    took_with_waiting: Duration::ZERO,
                    image: status.map(Box::new),
                }
            } else {
                Pulled::Failed((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ))
            };
        }
        if present && policy != "Always" {
            return Pulled::Ready {
                pulled: false,
                took: Duration::ZERO,
                took_with_waiting: Duration::ZERO,
                image: status.map(Box::new),
            };
        }
        if let Some((until, _)) = self.backoff.lock().unwrap().get(&key)
            && Instant::now() < *until
        {
            return Pulled::Failed((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\""),
            ));
        }
        pulling();
        let waiting_since = Instant::now();
        let _permit = match &self.pulls {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let auths = auths.await;
        let start = Instant::now();
        let mut result = rt.pull_image(&image, auths.first().cloned()).await;
        for auth in auths.iter().skip(1) {
            if result.is_ok() {
                break;
            }
            result = rt.pull_image(&image, Some(auth.clone())).await;
        }
        match result {
            Ok(_) => {
                self.backoff.lock().unwrap().remove(&key);
                let took = start.elapsed();
                Pulled::Ready {
                    pulled: true,
                    took,
                    took_with_waiting: waiting_since.elapsed(),
                    image: rt.image_status(&image).await.ok().flatten().map(Box::new),
                }
            }
            Err(e) => {
                let mut b = self.backoff.lock().unwrap();
                let next = b.get(&key).map_or(INITIAL, |(_, d)| (*d * 2).min(MAX));
                b.insert(key, (Instant::now() + next, next));
                Pulled::Failed((
                    "ErrImagePull".into(),
                    format!(
                        "failed to pull and unpack image \"{image}\": {}",
                        e.message()
                    ),
                ))
            }
        }
    }
}

/// Image garbage collection (upstream `image_gc_manager.go`): when the image
/// filesystem's usage passes `imageGCHighThresholdPercent`, images no container uses
/// (the sandbox image excepted), least recently seen in use first, are removed until usage
/// is below `imageGCLowThresholdPercent`. Images younger than `imageMinimumGCAge` stay.
#[derive(Default)]
pub struct ImageGc {
    /// image id -> when it was first seen, and last seen in use.
    seen: Mutex<HashMap<String, (Instant, Instant)>>,
}

impl ImageGc {
    pub async fn run_once(
        &self,
        rt: &RemoteRuntime,
        high: i32,
        low: i32,
        min_age: Duration,
        pinned: &str,
    ) -> Result<u64, String> {
        let fs = rt
            .image_fs_info()
            .await
            .map_err(|e| e.message().to_string())?;
        let Some(f) = fs.image_filesystems.first() else {
            return Ok(0);
        };
        let used = f.used_bytes.as_ref().map_or(0, |u| u.value);
        let mount = f
            .fs_id
            .as_ref()
            .map(|m| m.mountpoint.clone())
            .unwrap_or_default();
        let (capacity, _) = crate::nodestatus::fs_usage(std::path::Path::new(&mount));
        let images = rt
            .list_images()
            .await
            .map_err(|e| e.message().to_string())?;
        let in_use: std::collections::HashSet<String> = rt
            .list_containers()
            .await
            .map_err(|e| e.message().to_string())?
            .into_iter()
            .map(|c| c.image_ref)
            .collect();
        let now = Instant::now();
        {
            let mut seen = self.seen.lock().unwrap();
            for i in &images {
                let e = seen.entry(i.id.clone()).or_insert((now, now));
                if in_use.contains(&i.id) {
                    e.1 = now;
                }
            }
            seen.retain(|id, _| images.iter().any(|i| &i.id == id));
        }
        if capacity == 0 || used * 100 < capacity * high.max(0) as u64 {
            return Ok(0);
        }
        let target = capacity * low.max(0) as u64 / 100;
        let mut to_free = used.saturating_sub(target);
        let mut candidates: Vec<(Instant, String, u64)> = {
            let seen = self.seen.lock().unwrap();
            images
                .iter()
                .filter(|i| {
                    !in_use.contains(&i.id) && !i.pinned && !i.repo_tags.iter().any(|t| t == pinned)
                })
                .filter_map(|i| {
                    let (first, last) = seen.get(&i.id)?;
                    (first.elapsed() >= min_age).then(|| (*last, i.id.clone(), i.size))
                })
                .collect()
        };
        candidates.sort();
        let mut freed = 0;
        for (_, id, size) in candidates {
            if to_free == 0 {
                break;
            }
            if rt.remove_image(&id).await.is_ok() {
                tracing::info!(image = id, size, "Removing image to free bytes");
                freed += size;
                to_free = to_free.saturating_sub(size);
            }
        }
        Ok(freed)
    }
}
