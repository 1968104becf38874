//! The scheduler (upstream `scheduler.go`): one loop that owns the cache and the queue,
//! applies informer messages between cycles, schedules one pod per cycle, and hands
//! bindings to async tasks whose results come back as messages. Filters and scores run
//! on a pool of `parallelism` threads.

use crate::apis::config::KubeSchedulerConfiguration;
use crate::backend::cache::Cache;
use crate::backend::queue::Queue;
use crate::eventhandlers::Message;
use crate::eventhandlers::{Stored, StoredKind};
use crate::framework::plugins::defaultpreemption::Candidate;
use crate::framework::plugins::volume::binding::{VOLUMES_KEY, VolumesRef};
use crate::framework::runtime::{BindingCycle, Framework};
use crate::framework::{
    BindContext, Code, CycleState, Handle, Owners, PodInfo, PostFilterContext, PostFilterResult,
    Snapshot, Status, Volumes,
};
use crate::metrics::METRICS;
use crate::schedule_one::{Algorithm, Outcome};
use client_go::events::Recorder;
use client_go::flowcontrol::RateLimiter;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

pub struct Scheduler {
    frameworks: Vec<Framework>,
    profiles: HashMap<String, usize>,
    cache: Cache,
    queue: Queue,
    algorithm: Algorithm,
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    tx: Sender<Message>,
    recorder: Arc<Recorder>,
    limiter: Arc<RateLimiter>,
    pods_synced: bool,
    nodes_synced: bool,
    pdbs: HashMap<String, Arc<PodDisruptionBudget>>,
    /// Storage objects for the volume plugins (copied on write while a cycle holds them).
    volumes: Arc<Volumes>,
    /// Services and workload controllers (default spreading).
    owners: Arc<Owners>,
    /// What the plugins share (the volumes assumed for pods still binding).
    handle: Handle,
    /// Node -> pending pods nominated there by preemption.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    /// When each in-flight pod's cycle started (for the attempt duration).
    started: HashMap<String, (Instant, Option<Instant>, usize, u32)>,
    /// Set once the informers have synced (readyz).
    pub ready: Arc<AtomicBool>,
}

pub fn object_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Scheduler {
    pub fn new(
        cfg: &KubeSchedulerConfiguration,
        client: kube::Client,
        runtime: tokio::runtime::Handle,
        tx: Sender<Message>,
        recorder: Arc<Recorder>,
        limiter: Arc<RateLimiter>,
    ) -> Result<Self, String> {
        let handle = Handle::default();
        let mut frameworks = Vec::new();
        let mut profiles = HashMap::new();
        for (i, p) in cfg.profiles.iter().enumerate() {
            let mut fw = Framework::new(p, &handle)?;
            fw.percentage_of_nodes_to_score = fw
                .percentage_of_nodes_to_score
                .or(cfg.percentage_of_nodes_to_score);
            profiles.insert(p.scheduler_name.clone(), i);
            frameworks.push(fw);
        }
        Ok(Scheduler {
            frameworks,
            profiles,
            cache: Cache::default(),
            queue: Queue::new(
                Duration::from_secs(cfg.pod_initial_backoff_seconds as u64),
                Duration::from_secs(cfg.pod_max_backoff_seconds as u64),
            ),
            algorithm: Algorithm::default(),
            client,
            runtime,
            tx,
            recorder,
            limiter,
            pods_synced: false,
            nodes_synced: false,
            pdbs: HashMap::new(),
            nominated: HashMap::new(),
            volumes: Arc::default(),
            owners: Arc::default(),
            handle,
            started: HashMap::new(),
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    fn profile_of(&self, pod: &Pod) -> Option<usize> {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::apis::config::DEFAULT_SCHEDULER_NAME);
        self.profiles.get(name).copied()
    }

    fn gated(&self, profile: usize, info: &PodInfo) -> bool {
        self.frameworks[profile]
            .pre_enqueue
            .iter()
            .any(|p| !p.pre_enqueue(info).is_success())
    }

    fn incoming(queue: &str, event: &str) {
        METRICS
            .incoming_pods
            .get_or_create(&crate::metrics::IncomingLabels {
                queue: queue.into(),
                event: event.into(),
            })
            .inc();
    }

    /// Records (or clears) the node a pending pod is nominated to.
    fn set_nominated(&mut self, uid: &str, pod: Option<&Arc<PodInfo>>) {
        for list in self.nominated.values_mut() {
            list.retain(|p| p.uid != uid);
        }
        self.nominated.retain(|_, l| !l.is_empty());
        let node = pod
            .and_then(|p| p.pod.status.as_ref())
            .and_then(|s| s.nominated_node_name.clone());
        if let (Some(node), Some(p)) = (node.filter(|n| !n.is_empty()), pod) {
            self.nominated.entry(node).or_default().push(p.clone());
        }
    }

    fn on_pod(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if is_terminal(&pod) {
            return self.on_pod_deleted(pod);
        }
        if node_name(&pod).is_some() {
            self.set_nominated(&uid, None);
            self.queue.delete(&uid);
            self.cache.add_or_update_pod(PodInfo::new(pod));
            return;
        }
        let Some(profile) = self.profile_of(&pod) else {
            return;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&uid);
            return;
        }
        if self.cache.is_assumed_or_bound(&uid) {
            return;
        }
        let info = PodInfo::new(pod);
        self.set_nominated(&uid, Some(&info));
        let gated = self.gated(profile, &info);
        if self.queue.contains(&uid) {
            self.queue.update(info, gated);
        } else {
            Self::incoming(if gated { "gated" } else { "active" }, "PodAdd");
            self.queue.add(info, profile, gated);
        }
    }

    fn on_pod_deleted(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.set_nominated(&uid, None);
        self.queue.delete(&uid);
        if self.cache.is_assumed_or_bound(&uid) {
            self.cache.remove_pod(&uid);
            // Freed capacity may let unschedulable pods fit.
            self.queue.move_all_to_active_or_backoff();
        }
    }

    fn apply(&mut self, msg: Message) {
        match msg {
            Message::Pod(p) => self.on_pod(p),
            Message::PodDeleted(p) => self.on_pod_deleted(p),
            Message::PodsListed(uids) => {
                for uid in self.cache.pod_uids().difference(&uids) {
                    self.cache.remove_pod(uid);
                }
                self.pods_synced = true;
            }
            Message::Node(n) => {
                self.cache.add_or_update_node(n);
                self.queue.move_all_to_active_or_backoff();
            }
            Message::NodeDeleted(name) => self.cache.remove_node(&name),
            Message::NodesListed(names) => {
                let gone: Vec<String> = self
                    .cache
                    .nodes
                    .iter()
                    .map(|n| n.name.clone())
                    .filter(|n| !names.contains(n))
                    .collect();
                for n in gone {
                    self.cache.remove_node(&n);
                }
                self.nodes_synced = true;
            }
            Message::Pdb(p) => {
                self.pdbs.insert(crate::eventhandlers::pdb_key(&p), p);
            }
            Message::PdbDeleted(key) => {
                self.pdbs.remove(&key);
            }
            Message::PdbsListed(keys) => self.pdbs.retain(|k, _| keys.contains(k)),
            Message::Stored(o) => {
                let key = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
                    crate::eventhandlers::key_of(m)
                };
                match o {
                    Stored::Claim(c) => {
                        Arc::make_mut(&mut self.volumes)
                            .claims
                            .insert(key(&c.metadata), c);
                    }
                    Stored::Volume(pv) => {
                        Arc::make_mut(&mut self.volumes)
                            .volumes
                            .insert(key(&pv.metadata), pv);
                    }
                    Stored::Class(sc) => {
                        Arc::make_mut(&mut self.volumes)
                            .classes
                            .insert(key(&sc.metadata), sc);
                    }
                    Stored::CsiNode(n) => {
                        Arc::make_mut(&mut self.volumes)
                            .csi_nodes
                            .insert(key(&n.metadata), n);
                    }
                    Stored::CsiDriver(d) => {
                        Arc::make_mut(&mut self.volumes)
                            .csi_drivers
                            .insert(key(&d.metadata), d);
                    }
                    Stored::Capacity(c) => {
                        Arc::make_mut(&mut self.volumes)
                            .capacities
                            .insert(key(&c.metadata), c);
                    }
                    Stored::Service(o) => {
                        Arc::make_mut(&mut self.owners)
                            .services
                            .insert(key(&o.metadata), o);
                        return;
                    }
                    Stored::ReplicationController(o) => {
                        Arc::make_mut(&mut self.owners)
                            .replication_controllers
                            .insert(key(&o.metadata), o);
                        return;
                    }
                    Stored::ReplicaSet(o) => {
                        Arc::make_mut(&mut self.owners)
                            .replica_sets
                            .insert(key(&o.metadata), o);
                        return;
                    }
                    Stored::StatefulSet(o) => {
                        Arc::make_mut(&mut self.owners)
                            .stateful_sets
                            .insert(key(&o.metadata), o);
                        return;
                    }
                }
                // A claim bound or a volume freed may let waiting pods fit.
                self.queue.move_all_to_active_or_backoff();
            }
            Message::StoredDeleted(kind, key) => self.stored_retain(kind, |k| *k != key),
            Message::StoredListed(kind, keys) => self.stored_retain(kind, |k| keys.contains(k)),
            Message::Bound { uid, node, error } => self.on_bound(uid, node, error),
        }
    }

    /// Keeps the stored objects of `kind` whose keys pass `keep`.
    fn stored_retain(&mut self, kind: StoredKind, keep: impl Fn(&String) -> bool) {
        match kind {
            StoredKind::Claim => Arc::make_mut(&mut self.volumes)
                .claims
                .retain(|k, _| keep(k)),
            StoredKind::Volume => Arc::make_mut(&mut self.volumes)
                .volumes
                .retain(|k, _| keep(k)),
            StoredKind::Class => Arc::make_mut(&mut self.volumes)
                .classes
                .retain(|k, _| keep(k)),
            StoredKind::CsiNode => Arc::make_mut(&mut self.volumes)
                .csi_nodes
                .retain(|k, _| keep(k)),
            StoredKind::CsiDriver => Arc::make_mut(&mut self.volumes)
                .csi_drivers
                .retain(|k, _| keep(k)),
            StoredKind::Capacity => Arc::make_mut(&mut self.volumes)
                .capacities
                .retain(|k, _| keep(k)),
            StoredKind::Service => Arc::make_mut(&mut self.owners)
                .services
                .retain(|k, _| keep(k)),
            StoredKind::ReplicationController => Arc::make_mut(&mut self.owners)
                .replication_controllers
                .retain(|k, _| keep(k)),
            StoredKind::ReplicaSet => Arc::make_mut(&mut self.owners)
                .replica_sets
                .retain(|k, _| keep(k)),
            StoredKind::StatefulSet => Arc::make_mut(&mut self.owners)
                .stateful_sets
                .retain(|k, _| keep(k)),
        }
    }

    fn on_bound(&mut self, uid: String, node: String, error: Option<String>) {
        let (started, initial, profile, attempts) =
            self.started
                .remove(&uid)
                .unwrap_or((Instant::now(), None, 0, 1));
        let profile_name = self
            .frameworks
            .get(profile)
            .map(|f| f.profile.clone())
            .unwrap_or_default();
        match error {
            None => {
                METRICS.observe_attempt(
                    "scheduled",
                    &profile_name,
                    started.elapsed().as_secs_f64(),
                );
                METRICS.pod_scheduling_attempts.observe(f64::from(attempts));
                if let Some(first) = initial {
                    METRICS
                        .pod_scheduling_sli_duration
                        .get_or_create(&crate::metrics::AttemptsLabels {
                            attempts: attempts.min(5).to_string(),
                        })
                        .observe(first.elapsed().as_secs_f64());
                    METRICS
                        .e2e_duration
                        .get_or_create(&crate::metrics::ResultLabels {
                            result: "scheduled".into(),
                            profile: profile_name,
                        })
                        .observe(first.elapsed().as_secs_f64());
                }
                self.queue.done(&uid);
            }
            Some(e) => {
                tracing::warn!(pod = uid, node, error = %e, "binding failed");
                METRICS.observe_attempt("error", &profile_name, started.elapsed().as_secs_f64());
                self.cache.forget(&uid);
                self.queue.add_backoff(&uid);
            }
        }
    }

    /// Applies informer events to the cache and queue until `stop` is set or every sender
    /// is gone; schedules pods only while `leading` (a standby keeps its cache warm and reports ready, as upstream's
    /// informers run before leader election).
    pub fn run(mut self, rx: Receiver<Message>, stop: Arc<AtomicBool>, leading: Arc<AtomicBool>) {
        let mut next_backoff: Option<Instant> = None;
        let mut last_metrics = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let synced = self.pods_synced && self.nodes_synced;
            let lead = leading.load(Ordering::Relaxed);
            let wait = if synced && lead && self.queue.has_active() {
                Duration::ZERO
            } else {
                next_backoff
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(1))
            };
            match rx.recv_timeout(wait) {
                Ok(m) => self.apply(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(m) = rx.try_recv() {
                self.apply(m);
            }
            next_backoff = self.queue.flush(Instant::now());
            if self.pods_synced && self.nodes_synced {
                self.ready.store(true, Ordering::Relaxed);
                if lead && let Some(qp) = self.queue.pop() {
                    self.schedule_one(qp);
                }
            }
            if last_metrics.elapsed() >= Duration::from_millis(500) {
                METRICS.set_pending(&self.queue.pending());
                last_metrics = Instant::now();
            }
        }
    }

    fn schedule_one(&mut self, qp: crate::backend::queue::QueuedPod) {
        let start = Instant::now();
        let fw = &self.frameworks[qp.profile];
        let info = qp.info.clone();
        let mut state = CycleState::default();
        state.write(
            VOLUMES_KEY,
            VolumesRef(self.volumes.clone(), self.handle.assumed_volumes.all()),
        );
        self.cache.refresh_images();
        let outcome = {
            let snapshot = Snapshot {
                nodes: &self.cache.nodes,
                image_nodes: self.cache.images(),
                nominated: &self.nominated,
                volumes: &self.volumes,
                owners: &self.owners,
            };
            self.algorithm.schedule(fw, &info, &snapshot, &mut state)
        };
        let profile = fw.profile.clone();
        match outcome {
            Outcome::Scheduled { node, .. } => {
                // Reserve, then Permit; a failure gives back what was reserved.
                let status = match self.cache.node(&node) {
                    Some(n) => fw.run_reserve(&mut state, &info, n),
                    None => Status::error(format!("node {node:?} not found")),
                };
                let status = if status.is_success() {
                    let s = fw.run_permit(&state, &info, &node);
                    if !s.is_success() {
                        fw.run_unreserve(&state, &info, &node);
                    }
                    s
                } else {
                    status
                };
                if !status.is_success() {
                    let (result, reason) = match status.code {
                        Code::Error => ("error", "SchedulerError"),
                        _ => ("unschedulable", "Unschedulable"),
                    };
                    METRICS.observe_attempt(result, &profile, start.elapsed().as_secs_f64());
                    self.report_failure(&info.pod, reason, status.message());
                    if status.code == Code::Error {
                        self.queue.add_backoff(&info.uid);
                    } else {
                        self.queue.add_unschedulable(&info.uid);
                    }
                    return;
                }
                let binding = fw.binding.clone();
                let mut pod = (*info.pod).clone();
                pod.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
                self.cache.assume(PodInfo::new(Arc::new(pod)), &node);
                self.started.insert(
                    info.uid.clone(),
                    (start, qp.initial_attempt, qp.profile, qp.attempts),
                );
                self.bind(binding, state, info, node);
            }
            Outcome::Unschedulable(mut diagnosis) => {
                // PostFilter: each plugin's account of why it cannot help, until one
                // (DefaultPreemption) nominates a node after evicting victims.
                let mut messages = Vec::new();
                let pdbs: Vec<_> = self.pdbs.values().cloned().collect();
                let mut preempt = None;
                {
                    let ctx = PostFilterContext {
                        framework: fw,
                        nodes: &self.cache.nodes,
                        diagnosis: &diagnosis,
                        pdbs: &pdbs,
                    };
                    for p in &fw.post_filter {
                        match p.post_filter(&ctx, &state, &info) {
                            PostFilterResult::Unresolved(m) if m.is_empty() => {}
                            PostFilterResult::Unresolved(m) => messages.push(m),
                            PostFilterResult::Preempt(c) => {
                                messages.clear();
                                preempt = Some(c);
                                break;
                            }
                        }
                    }
                }
                if let Some(c) = preempt {
                    self.preempt(&info.pod, c);
                }
                diagnosis.post_filter_msg = messages.join(", ");
                let msg = diagnosis.message();
                METRICS.observe_attempt("unschedulable", &profile, start.elapsed().as_secs_f64());
                self.report_failure(&info.pod, "Unschedulable", msg);
                self.queue.add_unschedulable(&info.uid);
            }
            Outcome::Error(e) => {
                METRICS.observe_attempt("error", &profile, start.elapsed().as_secs_f64());
                self.report_failure(&info.pod, "SchedulerError", e);
                self.queue.add_backoff(&info.uid);
            }
        }
    }

    /// The binding cycle, off the loop: waits for the client's rate limit, runs
    /// PreBind, Bind and PostBind, records the `Scheduled` event.
    fn bind(&self, binding: BindingCycle, state: CycleState, info: Arc<PodInfo>, node: String) {
        let ctx = BindContext {
            client: self.client.clone(),
            limiter: self.limiter.clone(),
        };
        let (recorder, tx) = (self.recorder.clone(), self.tx.clone());
        self.runtime.spawn(async move {
            ctx.limiter.wait().await;
            let pod = info.pod.clone();
            let uid = info.uid.clone();
            let bound = binding.run(&ctx, &state, &info, &node);
            let error = match bound.await {
                Ok(()) => {
                    recorder.eventf(
                        object_ref(&pod),
                        "Normal",
                        "Scheduled",
                        "Binding",
                        format!(
                            "Successfully assigned {}/{} to {node}",
                            pod.metadata.namespace.as_deref().unwrap_or_default(),
                            pod.metadata.name.as_deref().unwrap_or_default()
                        ),
                    );
                    None
                }
                Err(e) => {
                    recorder.eventf(
                        object_ref(&pod),
                        "Warning",
                        "FailedScheduling",
                        "Scheduling",
                        format!("Binding rejected: {e}"),
                    );
                    Some(e)
                }
            };
            let _ = tx.send(Message::Bound { uid, node, error });
        });
    }

    /// Evicts the victims (with upstream's DisruptionTarget condition and `Preempted`
    /// event) and nominates the node for the preemptor, which waits for them to go.
    fn preempt(&self, preemptor: &Arc<Pod>, c: Candidate) {
        METRICS.preemption_attempts.inc();
        METRICS.preemption_victims.observe(c.victims.len() as f64);
        let (client, limiter, recorder, preemptor) = (
            self.client.clone(),
            self.limiter.clone(),
            self.recorder.clone(),
            preemptor.clone(),
        );
        let profile = self
            .frameworks
            .first()
            .map(|f| f.profile.clone())
            .unwrap_or_default();
        tracing::info!(pod = %preemptor.metadata.name.as_deref().unwrap_or_default(), node = %c.node, victims = c.victims.len(), "preempting");
        self.runtime.spawn(async move {
            let puid = preemptor.metadata.uid.clone().unwrap_or_default();
            for v in &c.victims {
                limiter.wait().await;
                let api: Api<Pod> = Api::namespaced(client.clone(), v.namespace());
                let condition = serde_json::json!({"status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": format!("{profile}: preempting to accommodate a higher priority pod"),
                    "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }]}});
                let _ = api.patch_status(v.name(), &PatchParams::default(), &Patch::Strategic(condition)).await;
                match api.delete(v.name(), &Default::default()).await {
                    Ok(_) => recorder.eventf(
                        object_ref(&v.pod),
                        "Normal",
                        "Preempted",
                        "Preempting",
                        format!("Preempted by pod {puid} on node {}", c.node),
                    ),
                    Err(e) => tracing::warn!(victim = v.name(), error = %e, "deleting preemption victim"),
                }
            }
            limiter.wait().await;
            let ns = preemptor.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let patch = serde_json::json!({"status": {"nominatedNodeName": c.node}});
            let name = preemptor.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                tracing::warn!(pod = name, error = %e, "setting nominatedNodeName");
            }
        });
    }

    /// `FailedScheduling` event and the pod's `PodScheduled=False` condition.
    fn report_failure(&self, pod: &Arc<Pod>, reason: &str, msg: String) {
        tracing::info!(pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()), reason, message = %msg, "unable to schedule pod");
        self.recorder.eventf(
            object_ref(pod),
            "Warning",
            "FailedScheduling",
            "Scheduling",
            msg.clone(),
        );
        let same = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_deref() == Some(&msg)
            });
        if same {
            return;
        }
        let (client, limiter, pod, reason) = (
            self.client.clone(),
            self.limiter.clone(),
            pod.clone(),
            reason.to_string(),
        );
        self.runtime.spawn(async move {
            limiter.wait().await;
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let patch = serde_json::json!({"status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": reason, "message": msg,
                "lastProbeTime": null,
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]}});
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = name, error = %e, "updating the PodScheduled condition");
            }
        });
    }
}
