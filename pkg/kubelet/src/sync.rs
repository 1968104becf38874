//! Syncing one pod (upstream `kubelet.go` SyncPod/SyncTerminatingPod and
//! `kuberuntime_manager.go` SyncPod/KillPod): make the runtime match the spec — a ready
//! sandbox, init containers one at a time (sidecars kept running), app containers started
//! and restarted per restartPolicy with CrashLoopBackOff, containers whose liveness or
//! startup probe failed replaced — then report the status. A deleted pod is stopped
//! (preStop hooks, SIGTERM, SIGKILL after the grace period), cleaned up and, for pods
//! from the apiserver, finally deleted with grace 0.

use crate::cri::api;
use crate::kubelet::{
    BACKOFF_INITIAL, BACKOFF_MAX, Kubelet, MIRROR_ANNOTATION, is_mirror, is_static,
};
use crate::kuberuntime::container::{ContainerInputs, container_config};
use crate::kuberuntime::pod_actions::{
    ContainerAction, Health, PodActions, compute_pod_actions, restart_policy,
};
use crate::kuberuntime::sandbox::sandbox_config;
use crate::metrics::METRICS;
use crate::prober::Kind;
use crate::status::{Inputs, Instance, PodRuntime};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a pod that waits on something (init container, back-off) is re-synced
/// even without events.
const SHORT_RESYNC: Duration = Duration::from_secs(1);

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
        .max(0)
}

impl Kubelet {
    pub async fn sync(self: &Arc<Self>, uid: &str) -> Result<Option<Duration>, String> {
        let pod = self.pod(uid);
        // A restarted kubelet hears of running pods (PLEG's first relist) before its
        // pod sources have listed: a pod not known yet is not a pod that is gone.
        if pod.is_none() && !self.pods.has_synced() {
            return Ok(Some(Duration::from_millis(200)));
        }
        tracing::debug!(pod_uid = uid, pod = ?pod.as_ref().and_then(|p| p.metadata.name.clone()), "SyncPod");
        let rt = self.pod_runtime(uid).await?;
        {
            let mut st = self.state.lock().unwrap();
            let s = st.entry(uid.to_string()).or_default();
            if let Some(p) = &pod {
                s.last_pod = Some(p.clone());
                if s.first_seen.is_none() {
                    s.first_seen = Some(Instant::now());
                    // A pod the kubelet already ran before a restart keeps its start time.
                    s.start_time = p
                        .status
                        .as_ref()
                        .and_then(|st| st.start_time.as_ref())
                        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .or_else(|| Some(now_rfc3339()));
                }
            }
        }
        let terminating = pod
            .as_ref()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        if terminating {
            return self.sync_terminating(uid, pod, rt).await;
        }
        let pod = pod.unwrap();
        if is_static(&pod) {
            self.ensure_mirror(&pod).await;
        }
        if self.admission(uid, &pod).is_err() {
            // Rejected for good: the status says why (see write_status); nothing runs.
            self.write_status(&pod, &rt).await;
            return Ok(Some(Duration::from_secs(60)));
        }
        let terminal_phase = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ) && !is_static(&pod);
        let until_deadline = self.until_active_deadline(uid, &pod);
        let (init_failed, killed, deadline) = {
            let st = self.state.lock().unwrap();
            let s = st.get(uid);
            (
                s.is_some_and(|s| s.init_failed),
                s.and_then(|s| s.killed_by_kubelet.as_ref().map(|k| k.grace)),
                s.is_some_and(|s| s.deadline_exceeded),
            )
        };
        if terminal_phase || init_failed || killed.is_some() || deadline || self.finished(&pod, &rt)
        {
            // Done: nothing runs any more (sidecars and the sandbox stop); a pod the
            // kubelet ends gets the grace it decided (none for a hard eviction).
            let grace = killed.unwrap_or_else(|| grace_seconds(&pod));
            self.kill_running(&pod, &rt, grace).await;
            if let Some(sb) = rt.sandbox().filter(|_| rt.sandbox_ready()) {
                let _ = self.runtime.stop_sandbox(&sb.id).await;
            }
            self.cm.destroy_pod(&pod);
            let rt = self.pod_runtime(uid).await?;
            self.write_status(&pod, &rt).await;
            return Ok(Some(Duration::from_secs(60)));
        }
        // Synced again when the active deadline passes.
        let mut next = until_deadline;
        // Volumes first; containers wait for them.
        let host_ip = self.host_ip();
        let allocatable = self.allocatable.lock().unwrap().clone();
        let mounts = match self
            .volumes
            .setup(&pod, &rt.pod_ip(), &host_ip, &allocatable)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(pod_uid = uid, error = %e, "MountVolume.SetUp failed");
                self.event(
                    &pod,
                    None,
                    "Warning",
                    "FailedMount",
                    format!("MountVolume.SetUp failed: {e}"),
                );
                self.write_status(&pod, &rt).await;
                return Ok(Some(Duration::from_secs(2)));
            }
        };
        // The pod's cgroup, with its limits, before anything runs in it.
        if let Err(e) = self.cm.ensure_pod(&pod, || self.active_pods()) {
            self.event(
                &pod,
                None,
                "Warning",
                "FailedCreatePodContainer",
                format!("unable to ensure pod container exists: {e}"),
            );
            self.write_status(&pod, &rt).await;
            return Err(e);
        }
        let mut rt = rt;
        let health = ProbeHealth {
            kubelet: self,
            uid: uid.to_string(),
        };
        if compute_pod_actions(&pod, &rt, &health).create_sandbox {
            self.kill_running(&pod, &rt, 0).await;
            for sb in &rt.sandboxes {
                let _ = self.runtime.stop_sandbox(&sb.id).await;
            }
            let cfg = sandbox_config(
                &pod,
                rt.sandboxes.len() as u32,
                &self.cfg.pod_logs_dir,
                &self.dns,
                &self.security,
                self.cm.pod_cgroup(&pod),
            );
            let cfg = match cfg {
                Ok(c) => c,
                Err(e) => {
                    let msg = format!(
                        "Failed to generate sandbox config for pod {:?}: {e}",
                        pod.metadata.name.as_deref().unwrap_or_default()
                    );
                    self.event(&pod, None, "Warning", "FailedCreatePodSandBox", msg);
                    self.write_status(&pod, &rt).await;
                    return Ok(Some(Duration::from_secs(10)));
                }
            };
            let _ = std::fs::create_dir_all(&cfg.log_directory);
            tracing::debug!(pod_uid = uid, "RunPodSandbox");
            match self.runtime.run_sandbox(cfg).await {
                Ok(id) => tracing::debug!(pod_uid = uid, sandbox = id, "sandbox ready"),
                Err(e) => {
                    let msg = format!("Failed to create pod sandbox: {}", e.message());
                    tracing::warn!(pod_uid = uid, error = msg, "RunPodSandbox failed");
                    self.event(&pod, None, "Warning", "FailedCreatePodSandBox", msg);
                    self.write_status(&pod, &rt).await;
                    return Ok(Some(Duration::from_secs(2)));
                }
            }
            rt = self.pod_runtime(uid).await?;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_ip = rt.pod_ip();
        let actions = compute_pod_actions(&pod, &rt, &health);
        let init_done = self.execute(&pod, &rt, &mounts, actions, &mut next).await;
        let rt = self.pod_runtime(uid).await?;
        self.collect_dead_containers(&rt).await;
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            if let Some(i) = rt.current(&c.name).filter(|i| i.running()) {
                self.probes.ensure(&pod, c, &i.status.id, &pod_ip);
            }
        }
        let status = self.write_status(&pod, &rt).await;
        self.observe_start(uid, &status);
        Ok(Some(next.unwrap_or(if init_done {
            Duration::from_secs(60)
        } else {
            SHORT_RESYNC
        })))
    }

    /// Time left before the pod's `activeDeadlineSeconds` (counted from its start time)
    /// passes; once it has, the pod is marked DeadlineExceeded (with upstream's Normal
    /// event) and None is returned.
    fn until_active_deadline(&self, uid: &str, pod: &Pod) -> Option<Duration> {
        let secs = pod.spec.as_ref()?.active_deadline_seconds?;
        let started = {
            let st = self.state.lock().unwrap();
            let s = st.get(uid)?;
            if s.deadline_exceeded {
                return None;
            }
            s.start_time.clone()?
        };
        let started: jiff::Timestamp = started.parse().ok()?;
        let deadline = started + jiff::SignedDuration::from_secs(secs.max(0));
        let left = deadline.duration_since(jiff::Timestamp::now());
        if left.is_positive() {
            return Some(Duration::from_millis(left.as_millis().max(1) as u64));
        }
        self.state
            .lock()
            .unwrap()
            .entry(uid.to_string())
            .or_default()
            .deadline_exceeded = true;
        self.event(
            pod,
            None,
            "Normal",
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline".into(),
        );
        None
    }

    /// The pod's admission, decided once when the kubelet first sees it (pods already
    /// running or finished when the kubelet starts are taken as admitted).
    fn admission(&self, uid: &str, pod: &Pod) -> Result<(), (String, String)> {
        if let Some(d) = self
            .state
            .lock()
            .unwrap()
            .get(uid)
            .and_then(|s| s.admitted.clone())
        {
            return d;
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p != "Pending");
        let decision = if started {
            Ok(())
        } else {
            let others = self.admitted_others(uid);
            self.admit(pod, &others)
        };
        if let Err((reason, message)) = &decision {
            tracing::info!(pod = ?pod.metadata.name, reason, "Pod rejected by admission");
            self.event(pod, None, "Warning", reason, message.clone());
        }
        self.state
            .lock()
            .unwrap()
            .entry(uid.to_string())
            .or_default()
            .admitted = Some(decision.clone());
        decision
    }

    /// Container GC (upstream `MaxPerPodContainer` = 1): of each container's exited
    /// instances only the newest is kept (for lastState and `logs --previous`).
    async fn collect_dead_containers(&self, rt: &PodRuntime) {
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for i in &rt.containers {
            if !i.exited() {
                continue;
            }
            let n = seen.entry(i.name()).or_default();
            *n += 1;
            if *n > 1 {
                let _ = self.runtime.remove_container(&i.status.id).await;
            }
        }
    }

    /// All app containers exited and none will restart (upstream: the pod is terminal).
    fn finished(&self, pod: &Pod, rt: &PodRuntime) -> bool {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = restart_policy(pod);
        if policy == "Always" || spec.containers.is_empty() {
            return false;
        }
        spec.containers.iter().all(|c| {
            rt.current(&c.name)
                .is_some_and(|i| i.exited() && (policy == "Never" || i.status.exit_code == 0))
        })
    }

    /// Writes the pod's managed `/etc/hosts` (`<pod dir>/etc-hosts`, mode 0644).
    fn write_etc_hosts(&self, pod: &Pod, pod_ip: &str) -> Result<std::path::PathBuf, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let path = self.volumes.pod_dir(&uid).join("etc-hosts");
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let node_hosts = match host_network {
            true => Some(
                std::fs::read_to_string("/etc/hosts")
                    .map_err(|e| format!("reading the node's /etc/hosts: {e}"))?,
            ),
            false => None,
        };
        let text = crate::kuberuntime::etc_hosts::content(
            pod,
            &[pod_ip.to_string()],
            &self.dns.cluster_domain,
            node_hosts.as_deref(),
        );
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new("/")))?;
            std::fs::write(&path, text)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    /// A container that could not be created or started: upstream's Warning `Failed`
    /// event ("Error: <why>") and the waiting reason its status shows.
    fn container_failed(&self, pod: &Pod, c: &str, reason: &str, msg: String) {
        self.event(pod, Some(c), "Warning", "Failed", format!("Error: {msg}"));
        self.set_waiting(pod, c, Some((reason, msg)));
    }

    fn set_waiting(&self, pod: &Pod, c: &str, w: Option<(&str, String)>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        let s = st.entry(uid).or_default();
        match w {
            Some((r, m)) => {
                s.waiting.insert(c.to_string(), (r.to_string(), m));
            }
            None => {
                s.waiting.remove(c);
            }
        }
    }

    /// Checks the container's restart back-off; Some(remaining) while it lasts.
    fn in_backoff(&self, pod: &Pod, c: &str) -> Option<Duration> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let st = self.state.lock().unwrap();
        let (until, _) = st.get(&uid)?.backoff.get(c)?;
        until.checked_duration_since(Instant::now())
    }

    /// The time left before `c` may be created again after a failed CreateContainer.
    fn create_backoff_left(&self, pod: &Pod, c: &str) -> Option<Duration> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let st = self.state.lock().unwrap();
        let at = st.get(&uid)?.create_failed.get(c)?;
        (*at + crate::kubelet::WORKER_BACKOFF).checked_duration_since(Instant::now())
    }

    fn mark_create_failed(&self, pod: &Pod, c: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        st.entry(uid)
            .or_default()
            .create_failed
            .insert(c.to_string(), Instant::now());
    }

    /// Records a restart: the next one waits 10 s, doubling to 5 min.
    fn bump_backoff(&self, pod: &Pod, c: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        let s = st.entry(uid).or_default();
        let next = match s.backoff.get(c) {
            // A container that ran for long (2x the max) starts over.
            Some((until, d)) if until.elapsed() < BACKOFF_MAX * 2 => (*d * 2).min(BACKOFF_MAX),
            _ => BACKOFF_INITIAL,
        };
        s.backoff
            .insert(c.to_string(), (Instant::now() + next, next));
    }

    /// Restarts an exited container unless it is in back-off (then it waits with
    /// CrashLoopBackOff).
    async fn restart(
        &self,
        pod: &Pod,
        c: &Container,
        rt: &PodRuntime,
        mounts: &crate::volumemanager::Mounts,
        next: &mut Option<Duration>,
        restart_count: i32,
    ) {
        if let Some(left) = self.in_backoff(pod, &c.name) {
            let m = &pod.metadata;
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                self.current_backoff(pod, &c.name).as_secs(),
                c.name,
                m.name.as_deref().unwrap_or_default(),
                m.namespace.as_deref().unwrap_or_default(),
                m.uid.as_deref().unwrap_or_default()
            );
            self.set_waiting(pod, &c.name, Some(("CrashLoopBackOff", msg)));
            self.event(
                pod,
                Some(&c.name),
                "Warning",
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    c.name,
                    m.name.as_deref().unwrap_or_default(),
                    m.namespace.as_deref().unwrap_or_default(),
                    m.uid.as_deref().unwrap_or_default()
                ),
            );
            *next = Some(next.map_or(left, |n| n.min(left)));
            return;
        }
        self.bump_backoff(pod, &c.name);
        self.start_container(pod, c, rt, mounts, restart_count + 1, next)
            .await;
    }

    fn current_backoff(&self, pod: &Pod, c: &str) -> Duration {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.state
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|s| s.backoff.get(c).map(|b| b.1))
            .unwrap_or(BACKOFF_INITIAL)
    }
    /// Carries out one sync's container actions (upstream `SyncPod` after
    /// `computePodActions`); returns whether every init container is done.
    async fn execute(
        &self,
        pod: &Pod,
        rt: &PodRuntime,
        mounts: &crate::volumemanager::Mounts,
        actions: PodActions,
        next: &mut Option<Duration>,
    ) -> bool {
        let spec = pod.spec.clone().unwrap_or_default();
        for (name, action) in &actions.init {
            if let Some(c) = spec
                .init_containers
                .iter()
                .flatten()
                .find(|c| c.name == *name)
            {
                self.act(pod, c, rt, mounts, action, next).await;
            }
        }
        if actions.init_failed {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            self.update_state(&uid, |s| s.init_failed = true);
        }
        for (name, action) in &actions.app {
            if let Some(c) = spec.containers.iter().find(|c| c.name == *name) {
                self.act(pod, c, rt, mounts, action, next).await;
                if matches!(action, ContainerAction::Kill { .. }) {
                    *next = Some(Duration::ZERO);
                }
            }
        }
        // Ephemeral containers (`kubectl debug`) start once and never restart.
        for e in spec.ephemeral_containers.iter().flatten() {
            if actions.ephemeral.contains(&e.name) {
                let c = crate::kuberuntime::container::ephemeral_as_container(e);
                self.start_container(pod, &c, rt, mounts, 0, next).await;
            }
        }
        actions.init_done
    }

    /// One container's action.
    async fn act(
        &self,
        pod: &Pod,
        c: &Container,
        rt: &PodRuntime,
        mounts: &crate::volumemanager::Mounts,
        action: &ContainerAction,
        next: &mut Option<Duration>,
    ) {
        match action {
            ContainerAction::Start { restart_count } => {
                self.start_container(pod, c, rt, mounts, *restart_count, next)
                    .await
            }
            ContainerAction::Restart { restart_count } => {
                self.restart(pod, c, rt, mounts, next, *restart_count).await
            }
            ContainerAction::Kill { reason } => {
                if let Some(i) = rt.current(&c.name) {
                    self.kill_to_restart(pod, c, i, reason.clone()).await;
                }
            }
            ContainerAction::Running => {
                if let Some(i) = rt.current(&c.name)
                    && self.resize(pod, c, i).await
                {
                    *next = Some(Duration::ZERO);
                }
            }
            ContainerAction::Remove { id } => {
                let _ = self.runtime.remove_container(id).await;
                *next = Some(Duration::ZERO);
            }
            ContainerAction::Done => self.set_waiting(pod, &c.name, None),
        }
    }

    /// The pod's `imagePullSecrets` credentials for `image`, most specific first; a
    /// Secret that cannot be read is reported and skipped, as upstream does.
    async fn pull_credentials(&self, pod: &Pod, image: &str) -> Vec<api::AuthConfig> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let names: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), &ns);
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match secrets.get(&name).await {
                Ok(s) => entries.extend(crate::credentialprovider::from_secret(&s)),
                Err(_) => missing.push(format!("{ns}/{name}")),
            }
        }
        if !missing.is_empty() {
            self.event(
                pod,
                None,
                "Warning",
                "FailedToRetrieveImagePullSecret",
                format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                    missing.join(", ")
                ),
            );
        }
        crate::credentialprovider::lookup(&entries, image)
            .into_iter()
            .map(crate::credentialprovider::auth)
            .collect()
    }

    /// The pods that run or will run here (not terminal, not being deleted).
    pub fn active_pods(&self) -> Vec<Pod> {
        self.desired_uids()
            .into_iter()
            .filter_map(|u| self.pod(&u))
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect()
    }

    /// The active pods admitted here besides `uid` (what a pod must fit next to).
    fn admitted_others(&self, uid: &str) -> Vec<Pod> {
        let st = self.state.lock().unwrap();
        self.desired_uids()
            .into_iter()
            .filter(|u| u != uid)
            .filter(|u| {
                st.get(u).is_some_and(|s| {
                    matches!(s.admitted, Some(Ok(()))) && s.killed_by_kubelet.is_none()
                })
            })
            .filter_map(|u| self.pod(&u))
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect()
    }

    /// Resizes a running container in place (or restarts it when its resizePolicy asks
    /// for it); true if it was killed to restart.
    async fn resize(&self, pod: &Pod, c: &Container, i: &Instance) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let applied = crate::resize::applied(&self.applied_resources.lock().unwrap(), i);
        let Some(applied) = applied else {
            return false;
        };
        let action = crate::resize::plan(pod, c, &applied, self.memory_capacity);
        let set_pending = |p: Option<(String, String)>| {
            self.update_state(&uid, |s| s.resize_pending = p);
        };
        if action == crate::resize::Action::None {
            self.update_state(&uid, |s| {
                s.resize_pending = None;
                s.resize_in_progress = None;
            });
            return false;
        }
        let allocatable = self.allocatable.lock().unwrap().clone();
        if let Err(pending) =
            crate::resize::feasible(pod, &allocatable, &self.admitted_others(&uid))
        {
            set_pending(Some(pending));
            return false;
        }
        set_pending(None);
        match action {
            crate::resize::Action::Update(linux) => {
                // The pod's cgroup takes the new total before its container does.
                self.cm.resize_pod(pod, &self.active_pods());
                let id = i.status.id.clone();
                let set_in_progress = |p: Option<(String, String)>| {
                    self.update_state(&uid, |s| s.resize_in_progress = p);
                };
                match self.runtime.update_container_resources(&id, *linux).await {
                    Ok(()) => {
                        set_in_progress(None);
                        let resources = c.resources.clone().unwrap_or_default();
                        self.applied_resources.lock().unwrap().insert(id, resources);
                        self.event(
                            pod,
                            Some(&c.name),
                            "Normal",
                            "ResizeCompleted",
                            format!("Container {} resized in place", c.name),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(pod = ?pod.metadata.name, container = c.name, error = e.message(), "UpdateContainerResources failed");
                        // Upstream's actuation error: the resize stays in progress.
                        set_in_progress(Some((
                            "Error".into(),
                            format!(
                                "UpdateContainerResources failed for container {}: {}",
                                c.name,
                                e.message()
                            ),
                        )));
                    }
                }
                false
            }
            crate::resize::Action::Restart(reason) => {
                self.kill_to_restart(pod, c, i, reason).await;
                true
            }
            crate::resize::Action::None => false,
        }
    }

    /// Stops a running container (its pod's grace period) so the next sync starts it
    /// again; the Killing event says why.
    async fn kill_to_restart(&self, pod: &Pod, c: &Container, i: &Instance, reason: String) {
        self.event(pod, Some(&c.name), "Normal", "Killing", reason);
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        self.kill_container(pod, c, i, grace).await;
    }

    /// Pulls, creates and starts one container; failures leave it waiting with
    /// upstream's reason.
    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        rt: &PodRuntime,
        mounts: &crate::volumemanager::Mounts,
        restart_count: i32,
        next: &mut Option<Duration>,
    ) {
        let image = c.image.clone().unwrap_or_default();
        let retry =
            |next: &mut Option<Duration>, d: Duration| *next = Some(next.map_or(d, |n| n.min(d)));
        if let Some(left) = self.create_backoff_left(pod, &c.name) {
            retry(next, left);
            return;
        }
        let auths = self.pull_credentials(pod, &image);
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let pulling = || {
            self.event(
                pod,
                Some(&c.name),
                "Normal",
                "Pulling",
                format!("Pulling image \"{image}\""),
            )
        };
        let known = match self
            .images
            .ensure(&self.runtime, &pod_uid, c, auths, pulling)
            .await
        {
            crate::images::Pulled::Ready {
                pulled,
                took,
                took_with_waiting,
                image: known,
            } => {
                if pulled {
                    // Go's durations, to the millisecond, as upstream's message.
                    let go = |d: Duration| {
                        apimachinery::duration::format_go(d.as_millis() as i64 * 1_000_000)
                    };
                    let size = known.as_ref().map_or(0, |i| i.size);
                    self.event(
                        pod,
                        Some(&c.name),
                        "Normal",
                        "Pulled",
                        format!(
                            "Successfully pulled image \"{image}\" in {} ({} including waiting). Image size: {size} bytes.",
                            go(took),
                            go(took_with_waiting)
                        ),
                    );
                } else {
                    self.event(
                        pod,
                        Some(&c.name),
                        "Normal",
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                    );
                }
                known
            }
            crate::images::Pulled::Failed((reason, msg)) => {
                // Upstream's pair: what happened, then the container's error.
                let (type_, ev, first) = match reason.as_str() {
                    "ImagePullBackOff" => ("Normal", "BackOff", msg.clone()),
                    "ErrImagePull" => (
                        "Warning",
                        "Failed",
                        format!("Failed to pull image \"{image}\": {msg}"),
                    ),
                    other => ("Warning", other, msg.clone()),
                };
                self.event(pod, Some(&c.name), type_, ev, first);
                self.event(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "Failed",
                    format!("Error: {reason}"),
                );
                self.set_waiting(pod, &c.name, Some((&reason, msg)));
                retry(next, Duration::from_secs(2));
                return;
            }
        };
        // runAsNonRoot against the user the image runs as (asked of the runtime only
        // when the image was just pulled).
        let known = match known {
            Some(i) => Some(*i),
            None => self.runtime.image_status(&image).await.ok().flatten(),
        };
        let image_user = match known {
            Some(i) => (i.uid.map(|u| u.value), i.username),
            None => (None, String::new()),
        };
        if let Err(msg) = crate::kuberuntime::security_context::verify_run_as_non_root(
            pod,
            c,
            image_user.0,
            &image_user.1,
        ) {
            self.container_failed(pod, &c.name, "CreateContainerConfigError", msg);
            retry(next, Duration::from_secs(2));
            return;
        }
        let pod_ip = rt.pod_ip();
        let services: Vec<_> = self.services.store.state();
        let allocatable = self.allocatable.lock().unwrap().clone();
        let env = match crate::kuberuntime::env::make_environment(
            &self.client,
            pod,
            c,
            &services,
            &pod_ip,
            &self.host_ip(),
            &allocatable,
        )
        .await
        {
            Ok(e) => e,
            Err(e) => {
                self.container_failed(pod, &c.name, "CreateContainerConfigError", e);
                retry(next, Duration::from_secs(2));
                return;
            }
        };
        let env_map: std::collections::BTreeMap<String, String> = env.iter().cloned().collect();
        let mut cri_mounts = Vec::new();
        for vm in c.volume_mounts.iter().flatten() {
            let Some(base) = mounts.get(&vm.name) else {
                let msg = format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    vm.name, c.name
                );
                self.set_waiting(pod, &c.name, Some(("CreateContainerConfigError", msg)));
                retry(next, Duration::from_secs(2));
                return;
            };
            let host = match crate::kuberuntime::subpath::host_path(vm, &env_map, base) {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!(
                        "failed to prepare subPath for volumeMount {:?} of container {:?}: {e}",
                        vm.name, c.name
                    );
                    self.container_failed(pod, &c.name, "CreateContainerConfigError", msg);
                    retry(next, Duration::from_secs(2));
                    return;
                }
            };
            cri_mounts.push(api::Mount {
                container_path: vm.mount_path.clone(),
                host_path: host.display().to_string(),
                readonly: vm.read_only == Some(true),
                propagation: crate::kuberuntime::mounts::propagation(
                    vm.mount_propagation.as_deref(),
                ) as i32,
                recursive_read_only: crate::kuberuntime::mounts::recursive_read_only(vm),
                ..Default::default()
            });
        }
        // The file the container may leave its termination message in.
        if let Some(path) = c
            .termination_message_path
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            match crate::kuberuntime::termination::create_file(&self.volumes.pod_dir(&uid), &c.name)
            {
                Ok(host) => cri_mounts.push(api::Mount {
                    container_path: path.to_string(),
                    host_path: host.display().to_string(),
                    ..Default::default()
                }),
                Err(e) => {
                    let msg = format!("creating the termination message file: {e}");
                    self.set_waiting(pod, &c.name, Some(("CreateContainerConfigError", msg)));
                    retry(next, Duration::from_secs(2));
                    return;
                }
            }
        }
        // The kubelet-managed /etc/hosts, unless the container mounts its own.
        let own_hosts = c
            .volume_mounts
            .iter()
            .flatten()
            .any(|vm| vm.mount_path.trim_end_matches('/') == "/etc/hosts");
        // A hostNetwork pod's IP is the node's.
        let hosts_ip = match pod.spec.as_ref().and_then(|s| s.host_network) {
            Some(true) => self.host_ip(),
            _ => pod_ip.clone(),
        };
        if !own_hosts && !hosts_ip.is_empty() {
            match self.write_etc_hosts(pod, &hosts_ip) {
                Ok(path) => cri_mounts.push(api::Mount {
                    container_path: "/etc/hosts".into(),
                    host_path: path.display().to_string(),
                    ..Default::default()
                }),
                Err(e) => {
                    self.set_waiting(pod, &c.name, Some(("CreateContainerConfigError", e)));
                    retry(next, Duration::from_secs(2));
                    return;
                }
            }
        }
        let Some(sandbox) = rt.sandbox() else { return };
        let sb_config = sandbox_config(
            pod,
            sandbox.metadata.as_ref().map_or(0, |m| m.attempt),
            &self.cfg.pod_logs_dir,
            &self.dns,
            &self.security,
            self.cm.pod_cgroup(pod),
        );
        let Ok(sb_config) = sb_config else { return };
        // An ephemeral container joins its target's process namespace.
        let target_id = pod
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .and_then(|es| es.iter().find(|e| e.name == c.name))
            .and_then(|e| e.target_container_name.clone())
            .and_then(|t| {
                rt.current(&t)
                    .filter(|i| i.running())
                    .map(|i| i.status.id.clone())
            });
        // Raw block volumes: the published device file, read-write-mknod as upstream.
        let mut devices = Vec::new();
        for d in c.volume_devices.iter().flatten() {
            let Some(path) = mounts.get(&d.name) else {
                let msg = format!(
                    "cannot find volume {:?} to map into container {:?}",
                    d.name, c.name
                );
                self.set_waiting(pod, &c.name, Some(("CreateContainerConfigError", msg)));
                retry(next, Duration::from_secs(2));
                return;
            };
            devices.push(api::Device {
                container_path: d.device_path.clone(),
                host_path: path.display().to_string(),
                permissions: "mrw".into(),
            });
        }
        let config = container_config(&ContainerInputs {
            pod,
            container: c,
            restart_count: restart_count.max(0) as u32,
            env,
            mounts: cri_mounts,
            devices,
            memory_capacity: self.memory_capacity,
            target_id,
            security: &self.security,
        });
        let op = |name: &str| crate::metrics::OperationLabels {
            operation_type: name.into(),
        };
        METRICS
            .runtime_operations
            .get_or_create(&op("create_container"))
            .inc();
        let id = match self
            .runtime
            .create_container(&sandbox.id, config, sb_config)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                METRICS
                    .runtime_operations_errors
                    .get_or_create(&op("create_container"))
                    .inc();
                let msg = e.message().to_string();
                tracing::warn!(pod = ?pod.metadata.name, container = c.name, error = msg, "CreateContainer failed");
                self.container_failed(pod, &c.name, "CreateContainerError", msg);
                self.mark_create_failed(pod, &c.name);
                retry(next, crate::kubelet::WORKER_BACKOFF);
                return;
            }
        };
        self.event(
            pod,
            Some(&c.name),
            "Normal",
            "Created",
            format!("Created container: {}", c.name),
        );
        METRICS
            .runtime_operations
            .get_or_create(&op("start_container"))
            .inc();
        if let Err(e) = self.runtime.start_container(&id).await {
            METRICS
                .runtime_operations_errors
                .get_or_create(&op("start_container"))
                .inc();
            let msg = e.message().to_string();
            self.container_failed(pod, &c.name, "RunContainerError", msg);
            self.bump_backoff(pod, &c.name);
            retry(next, Duration::from_secs(1));
            return;
        }
        METRICS.started_containers.inc();
        self.set_waiting(pod, &c.name, None);
        self.event(
            pod,
            Some(&c.name),
            "Normal",
            "Started",
            format!("Started container {}", c.name),
        );
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let budget = Duration::from_secs(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30)
                    .max(1) as u64,
            );
            if let Err(e) =
                crate::lifecycle::run_hook(&self.runtime, h, c, &id, &pod_ip, budget).await
            {
                self.event(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "FailedPostStartHook",
                    format!("PostStartHook failed: {e}"),
                );
                let _ = self.runtime.stop_container(&id, 0).await;
            }
        }
    }

    /// Stops one container: its preStop hook within the grace period, then SIGTERM and
    /// SIGKILL when the rest of the grace period is over.
    pub async fn kill_container(&self, pod: &Pod, c: &Container, i: &Instance, grace: i64) {
        let start = Instant::now();
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
            && grace > 0
        {
            let budget = Duration::from_secs(grace as u64);
            match tokio::time::timeout(
                budget,
                crate::lifecycle::run_hook(&self.runtime, h, c, &i.status.id, "", budget),
            )
            .await
            {
                Ok(Err(e)) => self.event(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "FailedPreStopHook",
                    format!("PreStopHook failed: {e}"),
                ),
                Err(_) => self.event(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "FailedPreStopHook",
                    format!("PreStopHook failed: timed out after {grace}s"),
                ),
                Ok(Ok(())) => {}
            }
        }
        let left = (grace - start.elapsed().as_secs() as i64).max(2.min(grace));
        let _ = self.runtime.stop_container(&i.status.id, left).await;
    }

    /// Stops every running container of the pod: app containers first, then sidecars in
    /// reverse order, as upstream does.
    async fn kill_running(&self, pod: &Pod, rt: &PodRuntime, grace: i64) {
        let spec = pod.spec.clone().unwrap_or_default();
        let running: Vec<&Instance> = rt.containers.iter().filter(|i| i.running()).collect();
        if running.is_empty() {
            return;
        }
        let find = |name: &str| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name)
                .cloned()
                .unwrap_or_else(|| Container {
                    name: name.into(),
                    ..Default::default()
                })
        };
        let is_sidecar = |name: &str| {
            spec.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == name)
        };
        let (sidecars, apps): (Vec<&Instance>, Vec<&Instance>) =
            running.into_iter().partition(|i| is_sidecar(i.name()));
        futures::future::join_all(apps.into_iter().map(|i| {
            let c = find(i.name());
            async move {
                self.event(
                    pod,
                    Some(&c.name),
                    "Normal",
                    "Killing",
                    format!("Stopping container {}", c.name),
                );
                self.kill_container(pod, &c, i, grace).await;
            }
        }))
        .await;
        for i in sidecars.into_iter().rev() {
            let c = find(i.name());
            self.kill_container(pod, &c, i, grace).await;
        }
    }

    async fn sync_terminating(
        self: &Arc<Self>,
        uid: &str,
        pod: Option<Pod>,
        rt: PodRuntime,
    ) -> Result<Option<Duration>, String> {
        let last = pod.clone().or_else(|| {
            self.state
                .lock()
                .unwrap()
                .get(uid)
                .and_then(|s| s.last_pod.clone())
        });
        if let Some(p) = &last {
            self.kill_running(p, &rt, grace_seconds(p)).await;
        }
        for sb in &rt.sandboxes {
            let _ = self.runtime.stop_sandbox(&sb.id).await;
        }
        self.probes.remove_pod(uid);
        if let Some(p) = &pod
            && !is_static(p)
        {
            // The final status, then the deletion the apiserver waits for.
            let rt = self.pod_runtime(uid).await.unwrap_or_default();
            self.write_status(p, &rt).await;
        }
        for i in &rt.containers {
            let _ = self.runtime.remove_container(&i.status.id).await;
        }
        for sb in &rt.sandboxes {
            let _ = self.runtime.remove_sandbox(&sb.id).await;
        }
        if let Some(p) = &last {
            self.cm.destroy_pod(p);
            self.cm.update_qos(&self.active_pods());
        }
        if let Err(e) = self.volumes.teardown(uid).await {
            tracing::warn!(pod_uid = uid, error = %e, "UnmountVolume failed");
            if let Some(p) = &last {
                self.event(p, None, "Warning", "FailedUnmount", e.clone());
            }
            return Err(e);
        }
        if let Some(p) = &last {
            let _ = std::fs::remove_dir_all(crate::kuberuntime::sandbox::log_directory(
                &self.cfg.pod_logs_dir,
                p,
            ));
        }
        match (&pod, &last) {
            (Some(p), _) if !is_static(p) => {
                let api: Api<Pod> = Api::namespaced(
                    self.client.clone(),
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                );
                let dp = now_if_uid(p.metadata.uid.clone());
                match api
                    .delete(p.metadata.name.as_deref().unwrap_or_default(), &dp)
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(format!("deleting pod: {e}")),
                }
            }
            (None, Some(p)) if is_static(p) => {
                // The static pod's manifest went: its mirror pod goes too.
                if let Some(m) = self.api_pod(p) {
                    let api: Api<Pod> = Api::namespaced(
                        self.client.clone(),
                        p.metadata.namespace.as_deref().unwrap_or_default(),
                    );
                    let _ = api
                        .delete(
                            p.metadata.name.as_deref().unwrap_or_default(),
                            &now_if_uid(m.metadata.uid.clone()),
                        )
                        .await;
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// Writes the pod's status if it changed (upstream's status manager); returns it.
    pub async fn write_status(&self, pod: &Pod, rt: &PodRuntime) -> serde_json::Value {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let (waiting, start_time, init_failed, killed, deadline) = {
            let st = self.state.lock().unwrap();
            let s = st.get(&uid);
            (
                s.map(|s| s.waiting.clone()).unwrap_or_default(),
                s.and_then(|s| s.start_time.clone())
                    .unwrap_or_else(now_rfc3339),
                s.is_some_and(|s| s.init_failed),
                s.and_then(|s| s.killed_by_kubelet.clone()),
                s.is_some_and(|s| s.deadline_exceeded),
            )
        };
        let probes = self.probes.clone();
        let uid2 = uid.clone();
        let ready = move |c: &Container, i: &Instance| {
            c.readiness_probe.is_none()
                || probes.result(&uid2, &c.name, Kind::Readiness, &i.status.id) == Some(true)
        };
        let probes = self.probes.clone();
        let uid3 = uid.clone();
        let started = move |c: &Container, i: &Instance| {
            c.startup_probe.is_none()
                || probes.result(&uid3, &c.name, Kind::Startup, &i.status.id) == Some(true)
        };
        let names = self.image_names.lock().unwrap().clone();
        let image = move |i: &Instance| {
            let id = &i.status.image_ref;
            match names.get(id) {
                Some((n, d)) => (n.clone(), d.clone()),
                None => (
                    i.status
                        .image
                        .as_ref()
                        .map(|s| s.image.clone())
                        .unwrap_or_default(),
                    id.clone(),
                ),
            }
        };
        let applied =
            |i: &Instance| crate::resize::applied(&self.applied_resources.lock().unwrap(), i);
        let host_ip = self.host_ip();
        // Status is based on the API's copy (conditions others own live there). A static
        // pod's mirror the informer does not hold yet (made while its watch was cut) is
        // read from the apiserver, as upstream's status manager reads the pod it patches.
        let mut api_pod = self.api_pod(pod);
        if api_pod.is_none() && is_static(pod) {
            api_pod = self.live_mirror(pod).await.map(Arc::new);
        }
        let base = match &api_pod {
            Some(p) => {
                let mut b = pod.clone();
                b.status = p.status.clone();
                b
            }
            None => pod.clone(),
        };
        let mut status = crate::status::generate(
            &base,
            rt,
            &Inputs {
                waiting: &waiting,
                ready: &ready,
                started: &started,
                host_ip: &host_ip,
                start_time: &start_time,
                runtime_image: &image,
                applied_resources: &applied,
            },
            init_failed,
        );
        // Resizes the node cannot take now (PodResizePending) or has not finished
        // (PodResizeInProgress), each condition keeping its transition time.
        let (pending, in_progress) = self
            .state
            .lock()
            .unwrap()
            .get(&uid)
            .map(|s| (s.resize_pending.clone(), s.resize_in_progress.clone()))
            .unwrap_or_default();
        for (kind, cond) in [
            ("PodResizePending", pending),
            ("PodResizeInProgress", in_progress),
        ] {
            let since = base
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            if let Some(conds) = status["conditions"].as_array_mut() {
                conds.retain(|c| c["type"] != kind);
                if let Some((reason, message)) = cond {
                    let since = since.unwrap_or_else(|| {
                        jiff::Timestamp::now()
                            .strftime("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    });
                    let mut c = serde_json::json!({"type": kind, "status": "True",
                        "lastProbeTime": null, "lastTransitionTime": since});
                    if !reason.is_empty() {
                        c["reason"] = serde_json::json!(reason);
                        c["message"] = serde_json::json!(message);
                    }
                    conds.push(c);
                }
            }
        }
        if let Some(k) = killed {
            crate::status::killed_by_kubelet(&mut status, k.reason, &k.message);
        }
        if deadline {
            status["phase"] = serde_json::json!("Failed");
            status["reason"] = serde_json::json!("DeadlineExceeded");
            status["message"] =
                serde_json::json!("Pod was active on the node longer than the specified deadline");
        }
        let rejected = self
            .state
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|s| match &s.admitted {
                Some(Err(r)) => Some(r.clone()),
                _ => None,
            });
        if let Some((reason, message)) = rejected {
            status["phase"] = serde_json::json!("Failed");
            status["reason"] = serde_json::json!(reason);
            status["message"] = serde_json::json!(message);
        }
        let Some(mut target) = api_pod else {
            return status;
        };
        let changed = self
            .state
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|s| s.last_status.clone())
            .as_ref()
            != Some(&status);
        let current =
            serde_json::to_value(target.status.clone().unwrap_or_default()).unwrap_or_default();
        if !changed && same_status(&current, &status) {
            return status;
        }
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            target.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = target.metadata.name.clone().unwrap_or_default();
        // As upstream's status manager: conditions other components own come from a fresh
        // read, so that a write based on a stale cache neither drops nor reverts them.
        if let Ok(fresh) = api.get_status(&name).await {
            let theirs: Vec<serde_json::Value> = fresh
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !crate::status::owned_by_kubelet(&c.type_))
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect();
            if let Some(conds) = status["conditions"].as_array_mut() {
                conds.retain(|c| {
                    let t = c["type"].as_str().unwrap_or_default();
                    crate::status::owned_by_kubelet(t)
                        || !theirs.iter().any(|o| o["type"] == t) && t == "DisruptionTarget"
                });
                conds.extend(theirs);
            }
        }
        let patch_status = |uid: Option<String>| {
            let api = api.clone();
            let name = name.clone();
            let patch = json!({"metadata": {"uid": uid}, "status": status});
            async move {
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        };
        let mut result = patch_status(target.metadata.uid.clone()).await;
        // A static pod's mirror the informer has not caught up with (recreated while
        // the apiserver restarted): the live mirror of this manifest takes the status.
        if is_static(pod)
            && matches!(&result, Err(kube::Error::Api(e)) if e.code == 409)
            && let Some(live) = self.live_mirror(pod).await
        {
            target = Arc::new(live);
            result = patch_status(target.metadata.uid.clone()).await;
        }
        match result {
            Ok(_) => {
                self.state
                    .lock()
                    .unwrap()
                    .entry(uid)
                    .or_default()
                    .last_status = Some(status.clone());
            }
            Err(e) => {
                tracing::warn!(pod = ?target.metadata.name, error = %e, "Failed to update status for pod")
            }
        }
        status
    }

    /// Records pod start latency once the pod first runs.
    fn observe_start(&self, uid: &str, status: &serde_json::Value) {
        if status["phase"] != "Running" {
            return;
        }
        let mut st = self.state.lock().unwrap();
        let Some(s) = st.get_mut(uid) else { return };
        if s.running_reported {
            return;
        }
        s.running_reported = true;
        if let Some(t) = s.first_seen {
            METRICS
                .pod_start_duration
                .observe(t.elapsed().as_secs_f64());
        }
        METRICS.started_pods.inc();
    }

    /// The static pod's mirror as the apiserver has it now (the informer may lag behind
    /// a mirror recreated while its watch was cut).
    async fn live_mirror(&self, pod: &Pod) -> Option<Pod> {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        api.get_opt(name).await.ok().flatten().filter(is_mirror)
    }

    /// Creates the mirror pod of a static pod if the apiserver has none.
    async fn ensure_mirror(&self, pod: &Pod) {
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::kubelet::CONFIG_HASH).cloned())
            .unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        if let Some(existing) = self.api_pod(pod) {
            // Upstream's `IsMirrorPodOf`: a mirror of another version of the manifest
            // (a stale one, left while the apiserver was away) is deleted and made anew.
            let of = mirror_hash(&existing);
            if of == Some(&hash) {
                return;
            }
            // The informer may lag behind (a watch cut by the apiserver's restart): the
            // live object decides.
            if self
                .live_mirror(pod)
                .await
                .is_some_and(|live| mirror_hash(&live) == Some(&hash))
            {
                return;
            }
            tracing::info!(pod = ?pod.metadata.name, "Deleting mirror pod because it is outdated");
            let dp = now_if_uid(existing.metadata.uid.clone());
            match api
                .delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(pod = ?pod.metadata.name, error = %e, "Failed deleting an outdated mirror pod");
                    return;
                }
            }
        }
        let Some(node) = self.node().await else {
            return;
        };
        let mut mirror = pod.clone();
        mirror.metadata.uid = None;
        mirror.metadata.resource_version = None;
        mirror
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(MIRROR_ANNOTATION.into(), hash.clone());
        let mut owner = crate::nodestatus::node_owner(
            &self.node_name,
            node.metadata.uid.as_deref().unwrap_or_default(),
        );
        owner.controller = Some(true);
        mirror.metadata.owner_references = Some(vec![owner]);
        mirror.status = None;
        match api.create(&PostParams::default(), &mirror).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // One the informer has not shown yet: an outdated mirror is replaced.
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                match api.get(name).await {
                    Ok(existing) if !is_mirror(&existing) => {
                        tracing::warn!(pod = ?pod.metadata.name, "a pod with the static pod's name exists and is not its mirror");
                    }
                    Ok(existing) if mirror_hash(&existing) != Some(&hash) => {
                        let dp = now_if_uid(existing.metadata.uid.clone());
                        if api.delete(name, &dp).await.is_ok()
                            && let Err(e) = api.create(&PostParams::default(), &mirror).await
                        {
                            tracing::warn!(pod = ?pod.metadata.name, error = %e, "Failed creating a mirror pod");
                        }
                    }
                    _ => {}
                }
            }
            Err(e) => {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "Failed creating a mirror pod")
            }
        }
    }
}

/// Equal but for timestamps the kubelet does not own.
/// The manifest hash a mirror pod stands for.
fn mirror_hash(p: &Pod) -> Option<&String> {
    p.metadata.annotations.as_ref()?.get(MIRROR_ANNOTATION)
}

/// Delete at once, only the object with this UID (not a successor of the same name).
fn now_if_uid(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..Default::default()
    }
}

fn same_status(current: &serde_json::Value, new: &serde_json::Value) -> bool {
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("startTime");
        }
        v
    };
    let mut a = strip(current);
    let b = strip(new);
    // Compare only what we write.
    if let (Some(ao), Some(bo)) = (a.as_object_mut(), b.as_object()) {
        ao.retain(|k, _| bo.contains_key(k));
    }
    a == b
}

/// The prober's results, as the decision core asks for them.
struct ProbeHealth<'a> {
    kubelet: &'a Kubelet,
    uid: String,
}

impl Health for ProbeHealth<'_> {
    fn probe(&self, container: &str, kind: Kind, id: &str) -> Option<bool> {
        self.kubelet.probes.result(&self.uid, container, kind, id)
    }

    fn startup_window_over(&self, c: &Container, i: &Instance) -> bool {
        let Some(p) = &c.startup_probe else {
            return false;
        };
        let started = i.status.started_at / 1_000_000_000;
        let now = jiff::Timestamp::now().as_second();
        let window = p.initial_delay_seconds.unwrap_or(0) as i64
            + p.period_seconds.unwrap_or(10) as i64 * p.failure_threshold.unwrap_or(3) as i64;
        now - started >= window
    }
}
