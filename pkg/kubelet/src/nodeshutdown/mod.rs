//! Graceful node shutdown (upstream `pkg/kubelet/nodeshutdown`): the kubelet holds a
//! systemd-logind `delay` inhibitor lock; when logind announces a shutdown
//! (`PrepareForShutdown(true)`, or SIGUSR1 as upstream also accepts) the node turns
//! NotReady ("node is shutting down"), new pods are refused (`NodeShutdown`), and the
//! running pods are terminated group by group from the lowest priority up, each
//! group given its share of `shutdownGracePeriod` (`shutdownGracePeriodCriticalPods`
//! for the critical ones, or `shutdownGracePeriodByPodPriority`). Pods end Failed with
//! reason `Terminated` and a DisruptionTarget condition; then the lock is released and
//! the shutdown goes on. A cancelled shutdown takes the lock again. Without a system
//! bus or logind the kubelet runs on without it, logging why, as upstream does.

pub mod systemd;

use crate::kubelet::{Kubelet, KubeletKill};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const SHUTDOWN_REASON: &str = "Terminated";
pub const SHUTDOWN_MESSAGE: &str = "Pod was terminated in response to imminent node shutdown.";
pub const NOT_ADMITTED_REASON: &str = "NodeShutdown";
pub const NOT_ADMITTED_MESSAGE: &str = "Pod was rejected as the node is shutting down.";
/// Upstream's `scheduling.SystemCriticalPriority`.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// One entry of `shutdownGracePeriodByPodPriority`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownGracePeriodByPodPriority {
    pub priority: i32,
    pub shutdown_grace_period_seconds: i64,
}

/// The priority groups, lowest priority first (upstream `migrateConfig` when only
/// `shutdownGracePeriod`/`shutdownGracePeriodCriticalPods` are set).
pub fn groups(
    by_priority: &[ShutdownGracePeriodByPodPriority],
    grace: Duration,
    critical: Duration,
) -> Vec<ShutdownGracePeriodByPodPriority> {
    let mut g = if by_priority.is_empty() {
        if grace.is_zero() || critical > grace {
            return Vec::new();
        }
        vec![
            ShutdownGracePeriodByPodPriority {
                priority: 0,
                shutdown_grace_period_seconds: (grace - critical).as_secs() as i64,
            },
            ShutdownGracePeriodByPodPriority {
                priority: SYSTEM_CRITICAL_PRIORITY,
                shutdown_grace_period_seconds: critical.as_secs() as i64,
            },
        ]
    } else {
        by_priority.to_vec()
    };
    g.sort_by_key(|g| g.priority);
    g
}

/// Each group with the pods that fall in it: a pod belongs to the highest group whose
/// priority is at or below its own (the lowest group takes pods below every group).
pub fn group_pods(
    groups: &[ShutdownGracePeriodByPodPriority],
    pods: Vec<Pod>,
) -> Vec<(ShutdownGracePeriodByPodPriority, Vec<Pod>)> {
    let mut out: Vec<_> = groups.iter().map(|g| (g.clone(), Vec::new())).collect();
    if out.is_empty() {
        return out;
    }
    for pod in pods {
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        let index = groups
            .iter()
            .rposition(|g| g.priority <= priority)
            .unwrap_or(0);
        out[index].1.push(pod);
    }
    out
}

/// The grace a pod gets: its group's, or its own termination grace if shorter.
pub fn pod_grace(pod: &Pod, group_seconds: i64) -> i64 {
    match pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    {
        Some(own) if own <= group_seconds => own,
        _ => group_seconds,
    }
}

pub struct Manager {
    groups: Vec<ShutdownGracePeriodByPodPriority>,
    shutting_down: AtomicBool,
    /// logind's configuration drop-in directory (a test may point it elsewhere).
    logind_conf_dir: std::path::PathBuf,
}

impl Manager {
    pub fn new(cfg: &crate::apis::config::KubeletConfiguration) -> Manager {
        use crate::apis::config::KubeletConfiguration as C;
        Manager {
            groups: groups(
                &cfg.shutdown_grace_period_by_pod_priority,
                C::duration(&cfg.shutdown_grace_period),
                C::duration(&cfg.shutdown_grace_period_critical_pods),
            ),
            shutting_down: AtomicBool::new(false),
            logind_conf_dir: std::env::var_os("KUBELET_LOGIND_CONF_DIR")
                .map(Into::into)
                .unwrap_or_else(|| systemd::LOGIND_CONF_DIR.into()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Upstream's `ShutdownStatus`: the Ready condition's error while shutting down.
    pub fn status(&self) -> Result<(), String> {
        if self.shutting_down.load(Ordering::Relaxed) {
            Err("node is shutting down".into())
        } else {
            Ok(())
        }
    }

    /// The admission refusal while shutting down.
    pub fn admit(&self) -> Result<(), (String, String)> {
        self.status()
            .map_err(|_| (NOT_ADMITTED_REASON.into(), NOT_ADMITTED_MESSAGE.into()))
    }

    fn period_requested(&self) -> Duration {
        Duration::from_secs(
            self.groups
                .iter()
                .map(|g| g.shutdown_grace_period_seconds.max(0) as u64)
                .sum(),
        )
    }
}

/// Starts watching for shutdowns; errors (no system bus, no logind, a delay logind
/// will not raise) are logged and the kubelet runs on, as upstream's.
pub async fn start(k: Arc<Kubelet>) {
    if !k.shutdown.enabled() {
        tracing::info!("No graceful configuration specified, node shutdown will be immediate");
        return;
    }
    tracing::info!(groups = ?k.shutdown.groups, "Creating node shutdown manager");
    tokio::spawn(async move {
        // As upstream: a first failure leaves the node without graceful shutdown; a
        // session that ends (logind or the bus restarted) is taken up again.
        let mut started = false;
        loop {
            match watch(k.clone(), &mut started).await {
                Err(e) if !started => {
                    tracing::error!(error = e, "Failed to start node shutdown manager");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = e, "Unable to watch the node for shutdown events")
                }
                Ok(()) => {}
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// One session with logind, until the bus goes away.
async fn watch(k: Arc<Kubelet>, started: &mut bool) -> Result<(), String> {
    use futures::StreamExt;
    let logind = systemd::Logind::connect().await?;
    let requested = k.shutdown.period_requested();
    if requested > logind.current_inhibit_delay().await? {
        systemd::override_inhibit_delay(&k.shutdown.logind_conf_dir, requested)
            .map_err(|e| format!("unable to override inhibit delay by shutdown manager: {e}"))?;
        logind.reload_logind_conf().await?;
        let updated = logind.current_inhibit_delay().await?;
        if requested > updated {
            return Err(format!(
                "node shutdown manager was unable to update logind InhibitDelayMaxSec to {requested:?} (ShutdownGracePeriod), current value of InhibitDelayMaxSec ({updated:?}) is less than requested ShutdownGracePeriod"
            ));
        }
    }
    let mut lock = Some(logind.inhibit_shutdown().await?);
    let mut events = std::pin::pin!(logind.monitor_shutdown().await?);
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .map_err(|e| format!("watching SIGUSR1: {e}"))?;
    tracing::info!("Watching the node for shutdown events");
    *started = true;
    loop {
        let shutting_down = tokio::select! {
            e = events.next() => match e {
                Some(b) => b,
                None => return Err("ended watching the node for shutdown events".into()),
            },
            _ = usr1.recv() => true,
        };
        tracing::info!(
            shutting_down,
            "Shutdown manager detected new shutdown event"
        );
        k.node_event(
            "Normal",
            "NodeShutdown",
            if shutting_down {
                "Shutdown manager detected shutdown event"
            } else {
                "Shutdown manager detected shutdown cancellation"
            },
        );
        k.shutdown
            .shutting_down
            .store(shutting_down, Ordering::Relaxed);
        if shutting_down {
            k.node_status_now.notify_one();
            process_shutdown(&k).await;
            // Releasing the lock lets the shutdown go on.
            lock = None;
            tracing::info!(
                "Shutdown manager completed processing shutdown event, node will shutdown shortly"
            );
        } else if lock.is_none() {
            lock = Some(logind.inhibit_shutdown().await?);
        }
    }
}

/// Terminates the active pods group by group, each group waited for at most its grace.
async fn process_shutdown(k: &Arc<Kubelet>) {
    let active = k.active_pods();
    for (group, pods) in group_pods(&k.shutdown.groups, active) {
        if pods.is_empty() {
            continue;
        }
        let mut uids = Vec::new();
        for pod in &pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let grace = pod_grace(pod, group.shutdown_grace_period_seconds);
            tracing::info!(pod = ?pod.metadata.name, grace, "Shutdown manager killing pod with gracePeriod");
            k.end_pod(
                &uid,
                KubeletKill {
                    reason: SHUTDOWN_REASON,
                    message: SHUTDOWN_MESSAGE.into(),
                    grace,
                },
            );
            uids.push(uid);
        }
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(group.shutdown_grace_period_seconds.max(0) as u64);
        loop {
            let mut running = false;
            for uid in &uids {
                let rt = k.pod_runtime(uid).await.unwrap_or_default();
                running |= rt.containers.iter().any(|i| i.running());
            }
            if !running {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::info!(
                    grace = group.shutdown_grace_period_seconds,
                    priority = group.priority,
                    "Shutdown manager pod killing time out"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: Option<i32>, grace: Option<i64>) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"containers": [], "priority": priority, "terminationGracePeriodSeconds": grace}}))
        .unwrap()
    }

    fn names(g: &[(ShutdownGracePeriodByPodPriority, Vec<Pod>)]) -> Vec<(i32, i64, Vec<String>)> {
        g.iter()
            .map(|(g, p)| {
                (
                    g.priority,
                    g.shutdown_grace_period_seconds,
                    p.iter().map(|p| p.metadata.name.clone().unwrap()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn grace_periods_become_priority_groups() {
        let g = groups(&[], Duration::from_secs(30), Duration::from_secs(10));
        let pods = vec![
            pod("plain", None, None),
            pod("critical", Some(2_000_001_000), None),
            pod("cluster-critical", Some(2_000_000_000), None),
            pod("negative", Some(-5), None),
        ];
        assert_eq!(
            names(&group_pods(&g, pods)),
            vec![
                (0, 20, vec!["plain".to_string(), "negative".to_string()]),
                (
                    2_000_000_000,
                    10,
                    vec!["critical".to_string(), "cluster-critical".to_string()]
                ),
            ]
        );
        assert!(groups(&[], Duration::ZERO, Duration::ZERO).is_empty());
        assert!(groups(&[], Duration::from_secs(5), Duration::from_secs(10)).is_empty());
        // By priority: boundaries go to the group at or below.
        let by = [
            ShutdownGracePeriodByPodPriority {
                priority: 100_000,
                shutdown_grace_period_seconds: 60,
            },
            ShutdownGracePeriodByPodPriority {
                priority: 0,
                shutdown_grace_period_seconds: 30,
            },
            ShutdownGracePeriodByPodPriority {
                priority: 10_000,
                shutdown_grace_period_seconds: 10,
            },
        ];
        let g = groups(&by, Duration::ZERO, Duration::ZERO);
        let pods = vec![
            pod("p5000", Some(5000), None),
            pod("p10000", Some(10_000), None),
            pod("p99999", Some(99_999), None),
            pod("p200000", Some(200_000), None),
        ];
        assert_eq!(
            names(&group_pods(&g, pods)),
            vec![
                (0, 30, vec!["p5000".to_string()]),
                (10_000, 10, vec!["p10000".to_string(), "p99999".to_string()]),
                (100_000, 60, vec!["p200000".to_string()]),
            ]
        );
        assert_eq!(pod_grace(&pod("a", None, Some(5)), 20), 5);
        assert_eq!(pod_grace(&pod("a", None, Some(50)), 20), 20);
        assert_eq!(pod_grace(&pod("a", None, None), 20), 20);
    }
}
