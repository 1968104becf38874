//! The pod lifecycle event generator (upstream `pkg/kubelet/pleg/generic.go`): relists
//! the runtime's containers and sandboxes every second and wakes the worker of every
//! pod whose containers changed state; it also keeps the running-pods/containers gauges
//! and the image names the status reports.

use crate::cri::POD_UID;
use crate::kubelet::Kubelet;
use crate::metrics::{METRICS, StateLabels};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const RELIST_PERIOD: Duration = Duration::from_secs(1);

pub async fn run(k: Arc<Kubelet>) {
    // id -> (pod uid, state) as of the last relist.
    let mut last: HashMap<String, (String, i32)> = HashMap::new();
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut images_at = Instant::now() - Duration::from_secs(60);
    loop {
        tick.tick().await;
        let start = Instant::now();
        let (Ok(containers), Ok(sandboxes)) = (
            k.runtime.list_containers().await,
            k.runtime.list_sandboxes().await,
        ) else {
            continue;
        };
        k.health.pleg_relisted();
        let mut now: HashMap<String, (String, i32)> = HashMap::new();
        for c in &containers {
            if let Some(uid) = c.labels.get(POD_UID) {
                now.insert(c.id.clone(), (uid.clone(), c.state));
            }
        }
        for s in &sandboxes {
            if let Some(uid) = s.labels.get(POD_UID) {
                now.insert(s.id.clone(), (uid.clone(), 100 + s.state));
            }
        }
        let mut changed: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (id, (uid, st)) in &now {
            if last.get(id).map(|(_, s)| s) != Some(st) {
                changed.insert(uid.clone());
            }
        }
        for (id, (uid, _)) in &last {
            if !now.contains_key(id) {
                changed.insert(uid.clone());
            }
        }
        last = now;
        for uid in changed {
            // Pods the kubelet no longer knows about are cleaned up by housekeeping.
            k.dispatch(&uid);
        }
        let running_pods = sandboxes
            .iter()
            .filter(|s| s.state == crate::cri::api::PodSandboxState::SandboxReady as i32)
            .count();
        METRICS.running_pods.set(running_pods as i64);
        let mut by_state: HashMap<&str, i64> = HashMap::new();
        for c in &containers {
            let s = match crate::cri::api::ContainerState::try_from(c.state) {
                Ok(crate::cri::api::ContainerState::ContainerCreated) => "created",
                Ok(crate::cri::api::ContainerState::ContainerRunning) => "running",
                Ok(crate::cri::api::ContainerState::ContainerExited) => "exited",
                _ => "unknown",
            };
            *by_state.entry(s).or_default() += 1;
        }
        for s in ["created", "running", "exited", "unknown"] {
            METRICS
                .running_containers
                .get_or_create(&StateLabels {
                    container_state: s.into(),
                })
                .set(*by_state.get(s).unwrap_or(&0));
        }
        METRICS
            .pleg_relist_duration
            .observe(start.elapsed().as_secs_f64());
        METRICS
            .pleg_last_seen
            .set(jiff::Timestamp::now().as_second());
        if images_at.elapsed() > Duration::from_secs(10) {
            images_at = Instant::now();
            if let Ok(images) = k.runtime.list_images().await {
                let mut m = k.image_names.lock().unwrap();
                for i in images {
                    let name = i.repo_tags.first().cloned().unwrap_or_default();
                    let digest = i
                        .repo_digests
                        .first()
                        .cloned()
                        .unwrap_or_else(|| i.id.clone());
                    m.insert(i.id.clone(), (name, digest));
                }
            }
        }
    }
}
