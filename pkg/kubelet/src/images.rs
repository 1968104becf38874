//! Image pulls (upstream `pkg/kubelet/images`): `imagePullPolicy` (Always, IfNotPresent,
//! Never; `:latest` or untagged defaults to Always), and a per-image back-off of 10 s
//! doubling to 5 min after a failed pull, during which the container waits with
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

#[derive(Default)]
pub struct ImageManager {
    /// image -> (retry not before, current back-off).
    backoff: Mutex<HashMap<String, (Instant, Duration)>>,
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
        took: Duration,
    },
    Failed(PullError),
}

impl ImageManager {
    pub async fn ensure(&self, rt: &RemoteRuntime, c: &Container) -> Pulled {
        let image = c.image.clone().unwrap_or_default();
        let policy = pull_policy(c);
        let present = matches!(rt.image_status(&image).await, Ok(Some(_)));
        if policy == "Never" {
            return if present {
                Pulled::Ready {
                    pulled: false,
                    took: Duration::ZERO,
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
            };
        }
        if let Some((until, _)) = self.backoff.lock().unwrap().get(&image)
            && Instant::now() < *until
        {
            return Pulled::Failed((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\""),
            ));
        }
        let start = Instant::now();
        match rt.pull_image(&image).await {
            Ok(_) => {
                self.backoff.lock().unwrap().remove(&image);
                Pulled::Ready {
                    pulled: true,
                    took: start.elapsed(),
                }
            }
            Err(e) => {
                let mut b = self.backoff.lock().unwrap();
                let next = b.get(&image).map_or(INITIAL, |(_, d)| (*d * 2).min(MAX));
                b.insert(image.clone(), (Instant::now() + next, next));
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
