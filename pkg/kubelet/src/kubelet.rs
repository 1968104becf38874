//! The kubelet itself (upstream `pkg/kubelet/kubelet.go`): pod sources (the apiserver's
//! pods bound to this node, static pods from `--pod-manifest-path`), one worker per pod
//! that syncs it whenever its spec, runtime state (PLEG) or probe results change, node
//! status and lease loops, and housekeeping.

use crate::apis::config::KubeletConfiguration;
use crate::cri::POD_UID;
use crate::cri::remote::RemoteRuntime;
use crate::images::ImageManager;
use crate::kuberuntime::sandbox::DnsSettings;
use crate::metrics::METRICS;
use crate::status::{Instance, PodRuntime};
use crate::volumemanager::VolumeManager;
use client_go::events::Recorder;
use client_go::informer::Informer;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use kube::Api;
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";

/// Restart back-off of crashing containers (upstream: 10 s doubling to 5 min).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long a pod worker waits before trying again after a failed sync (upstream's
/// `backOffPeriod`).
pub const WORKER_BACKOFF: Duration = Duration::from_secs(10);

/// What the kubelet keeps per pod between syncs.
#[derive(Default)]
pub struct PodState {
    /// container -> (reason, message) while it waits.
    pub waiting: HashMap<String, (String, String)>,
    /// container -> (no restart before, current back-off).
    pub backoff: HashMap<String, (Instant, Duration)>,
    /// container -> when creating it last failed (CreateContainerError): the next try
    /// waits upstream's pod worker back-off instead of hammering the runtime.
    pub create_failed: HashMap<String, Instant>,
    pub start_time: Option<String>,
    pub first_seen: Option<Instant>,
    pub running_reported: bool,
    /// The last status written (to skip unchanged writes).
    pub last_status: Option<Value>,
    /// The last pod seen, to terminate it after it left every source.
    pub last_pod: Option<Pod>,
    /// The pod failed for good (init container failed with restartPolicy Never).
    pub init_failed: bool,
    /// Containers killed on purpose (id -> reason for the restart).
    pub killed: HashMap<String, String>,
    /// Set when the kubelet itself ends the pod (eviction, node shutdown).
    pub killed_by_kubelet: Option<KubeletKill>,
    /// The pod ran past `activeDeadlineSeconds` (upstream's active deadline handler).
    pub deadline_exceeded: bool,
    /// Admission: None until decided; Some(Err((reason, message))) if rejected.
    pub admitted: Option<Result<(), (String, String)>>,
    /// A resize the node cannot take now: (reason, message) of PodResizePending.
    pub resize_pending: Option<(String, String)>,
    /// A resize allocated but not (yet) actuated: (reason, message) of
    /// PodResizeInProgress (reason `Error` when the runtime refused it).
    pub resize_in_progress: Option<(String, String)>,
}

/// The kubelet ending a pod on its own account: the pod's final status says why, and
/// its containers get `grace` seconds.
#[derive(Clone, Debug)]
pub struct KubeletKill {
    /// `Evicted` or `Terminated` (node shutdown).
    pub reason: &'static str,
    pub message: String,
    pub grace: i64,
}

/// The kubelet's state: private to the crate (the binary only builds and runs it).
pub struct Kubelet {
    pub(crate) cfg: KubeletConfiguration,
    pub(crate) node_name: String,
    pub(crate) node_ip: String,
    pub(crate) root: PathBuf,
    pub(crate) client: kube::Client,
    pub(crate) runtime: RemoteRuntime,
    pub(crate) volumes: VolumeManager,
    pub(crate) images: ImageManager,
    pub(crate) pods: Arc<Informer<Pod>>,
    pub(crate) services: Arc<Informer<Service>>,
    pub(crate) static_pods: Mutex<HashMap<String, Pod>>,
    pub(crate) workers: Mutex<HashMap<String, Arc<Notify>>>,
    pub(crate) state: Mutex<HashMap<String, PodState>>,
    pub(crate) probes: Arc<crate::prober::Manager>,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) allocatable: Mutex<BTreeMap<String, String>>,
    pub(crate) memory_capacity: i64,
    pub(crate) dns: DnsSettings,
    /// image id -> (name, digest ref), from the runtime's image list.
    pub(crate) image_names: Mutex<HashMap<String, (String, String)>>,
    pub(crate) pressure: Arc<crate::eviction::Pressure>,
    /// Seccomp defaults and where Localhost profiles live.
    pub(crate) security: crate::kuberuntime::security_context::SecurityOptions,
    /// The sysctls pods may set here.
    pub(crate) sysctls: crate::sysctl::Allowlist,
    /// Whether the host enforces AppArmor profiles.
    pub(crate) apparmor_enabled: bool,
    /// Whether the runtime implements `supplementalGroupsPolicy: Strict`.
    pub(crate) strict_supplemental_groups: std::sync::atomic::AtomicBool,
    /// The sync loop's and the PLEG's liveness, for `/healthz`.
    pub(crate) health: crate::health::Health,
    /// container id -> the resources it was resized to in place (else its annotation).
    pub(crate) applied_resources:
        Mutex<HashMap<String, k8s_openapi::api::core::v1::ResourceRequirements>>,
    /// The cgroups pods run in.
    pub(crate) cm: crate::cm::ContainerManager,
    /// Graceful node shutdown.
    pub(crate) shutdown: crate::nodeshutdown::Manager,
    /// Wakes the node status loop for an update now.
    pub(crate) node_status_now: Notify,
}

impl Kubelet {
    pub fn new(
        cfg: KubeletConfiguration,
        node_name: String,
        node_ip: String,
        root: PathBuf,
        client: kube::Client,
        runtime: RemoteRuntime,
        cm: crate::cm::ContainerManager,
    ) -> Arc<Self> {
        let pods = Informer::with_config(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
        );
        let services = Informer::new(Api::<Service>::all(client.clone()));
        let recorder = Recorder::new(
            client.clone(),
            "kubelet",
            &node_name,
            Arc::new(client_go::flowcontrol::RateLimiter::new(
                cfg.kube_api_qps.max(1.0),
                cfg.kube_api_burst.max(1),
            )),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel::<(Pod, String, String)>();
        let probes = crate::prober::Manager::new(
            runtime.clone(),
            Arc::new(move |uid: &str| {
                let _ = tx.send(uid.to_string());
            }),
            Arc::new(move |pod: &Pod, c: &str, msg: String| {
                let _ = ev_tx.send((pod.clone(), c.to_string(), msg));
            }),
        );
        let mem = crate::nodestatus::machine_capacity(&root, cfg.max_pods)["memory"];
        let dns = DnsSettings {
            cluster_dns: cfg.cluster_dns.clone(),
            cluster_domain: if cfg.cluster_domain.is_empty() {
                "cluster.local".into()
            } else {
                cfg.cluster_domain.clone()
            },
            resolv_conf: cfg.resolv_conf.clone(),
        };
        let security = crate::kuberuntime::security_context::SecurityOptions {
            seccomp_default: cfg.seccomp_default,
            seccomp_root: root.join("seccomp"),
        };
        // Validated at start (KubeletConfiguration::validate).
        let sysctls = crate::sysctl::Allowlist::new(&cfg.allowed_unsafe_sysctls)
            .unwrap_or_else(|_| crate::sysctl::Allowlist::new(&[]).expect("the safe set"));
        let apparmor_enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        let images = ImageManager::new(cfg.serialize_image_pulls, cfg.max_parallel_image_pulls);
        let kl = Arc::new(Kubelet {
            cm,
            shutdown: crate::nodeshutdown::Manager::new(&cfg),
            node_status_now: Notify::new(),
            security,
            sysctls,
            apparmor_enabled,
            strict_supplemental_groups: Default::default(),
            applied_resources: Mutex::default(),
            health: crate::health::Health::from_env(KubeletConfiguration::duration(
                &cfg.sync_frequency,
            )),
            volumes: VolumeManager::new(
                root.clone(),
                client.clone(),
                crate::volume::csi::Plugin::new(
                    root.clone(),
                    node_name.clone(),
                    client.clone(),
                    Arc::new(crate::pluginmanager::csi::Handler::new(
                        client.clone(),
                        node_name.clone(),
                    )),
                ),
            ),
            cfg,
            node_name,
            node_ip,
            root,
            client,
            runtime,
            images,
            pods,
            services,
            static_pods: Mutex::default(),
            workers: Mutex::default(),
            state: Mutex::default(),
            probes,
            recorder,
            allocatable: Mutex::default(),
            memory_capacity: mem,
            dns,
            image_names: Mutex::default(),
            pressure: Arc::default(),
        });
        let weak = Arc::downgrade(&kl);
        tokio::spawn(async move {
            while let Some(uid) = rx.recv().await {
                match weak.upgrade() {
                    Some(k) => k.dispatch(&uid),
                    None => return,
                }
            }
        });
        let weak = Arc::downgrade(&kl);
        tokio::spawn(async move {
            while let Some((pod, c, msg)) = ev_rx.recv().await {
                let Some(k) = weak.upgrade() else { return };
                let mut r = k.reference(&pod);
                r.field_path = Some(k.field_path(&pod, &c));
                k.recorder
                    .eventf(r, "Warning", "Unhealthy", "ProbeWarning", msg);
            }
        });
        kl
    }

    /// The pod object events refer to (the mirror pod for static pods).
    pub fn reference(&self, pod: &Pod) -> ObjectReference {
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

    pub fn field_path(&self, pod: &Pod, container: &str) -> String {
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.containers.iter().any(|c| c.name == container) {
            format!("spec.containers{{{container}}}")
        } else if spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == container)
        {
            format!("spec.initContainers{{{container}}}")
        } else {
            String::new()
        }
    }

    /// An event about this node (upstream's node reference: the node's name as UID).
    pub fn node_event(&self, type_: &str, reason: &str, note: &str) {
        let r = ObjectReference {
            kind: Some("Node".into()),
            name: Some(self.node_name.clone()),
            uid: Some(self.node_name.clone()),
            ..Default::default()
        };
        self.recorder
            .eventf(r, type_, reason, reason, note.to_string());
    }

    pub fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        type_: &str,
        reason: &str,
        note: String,
    ) {
        let mut r = self.reference(pod);
        if let Some(c) = container {
            r.field_path = Some(self.field_path(pod, c));
        }
        self.recorder.eventf(r, type_, reason, reason, note);
    }

    /// The pod with this uid from any source (None once it left all of them).
    pub fn pod(&self, uid: &str) -> Option<Pod> {
        if let Some(p) = self.static_pods.lock().unwrap().get(uid) {
            return Some(p.clone());
        }
        self.pods
            .store
            .state()
            .into_iter()
            .find(|p| p.metadata.uid.as_deref() == Some(uid) && !is_mirror(p))
            .map(|p| (*p).clone())
    }

    /// Every pod uid the sources hold.
    pub fn desired_uids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.static_pods.lock().unwrap().keys().cloned().collect();
        v.extend(
            self.pods
                .store
                .state()
                .iter()
                .filter(|p| !is_mirror(p))
                .filter_map(|p| p.metadata.uid.clone()),
        );
        v
    }

    /// Changes the kubelet's record of pod `uid` (made on first use).
    pub fn update_state(&self, uid: &str, f: impl FnOnce(&mut PodState)) {
        f(self
            .state
            .lock()
            .unwrap()
            .entry(uid.to_string())
            .or_default());
    }

    /// Ends pod `uid` on the kubelet's own account (eviction, node shutdown): its worker
    /// kills it with the given grace and reports why.
    pub fn end_pod(self: &Arc<Self>, uid: &str, kill: KubeletKill) {
        self.update_state(uid, |s| s.killed_by_kubelet = Some(kill));
        self.dispatch(uid);
    }

    /// Wakes (or starts) the pod's worker.
    pub fn dispatch(self: &Arc<Self>, uid: &str) {
        let mut workers = self.workers.lock().unwrap();
        if let Some(n) = workers.get(uid) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(uid.to_string(), notify.clone());
        let me = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move { me.pod_worker(uid, notify).await });
    }

    async fn pod_worker(self: Arc<Self>, uid: String, notify: Arc<Notify>) {
        let resync =
            KubeletConfiguration::duration(&self.cfg.sync_frequency).max(Duration::from_secs(1));
        loop {
            let start = Instant::now();
            let next = match self.sync(&uid).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(pod_uid = uid, error = %e, "Error syncing pod, skipping");
                    Some(Duration::from_secs(1))
                }
            };
            METRICS
                .pod_worker_duration
                .get_or_create(&crate::metrics::OperationLabels {
                    operation_type: "sync".into(),
                })
                .observe(start.elapsed().as_secs_f64());
            match next {
                Some(d) => {
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = tokio::time::sleep(d.min(resync)) => {}
                    }
                }
                None => {
                    // Finished: leave unless the pod came back meanwhile.
                    let mut workers = self.workers.lock().unwrap();
                    if self.pod(&uid).is_some() {
                        continue;
                    }
                    workers.remove(&uid);
                    self.state.lock().unwrap().remove(&uid);
                    return;
                }
            }
        }
    }

    /// The runtime's sandboxes and containers of one pod, newest first.
    pub async fn pod_runtime(&self, uid: &str) -> Result<PodRuntime, String> {
        let mut rt = PodRuntime::default();
        let sandboxes = self
            .runtime
            .list_sandboxes()
            .await
            .map_err(|e| e.message().to_string())?;
        let mut sbs: Vec<_> = sandboxes
            .into_iter()
            .filter(|s| s.labels.get(POD_UID).map(String::as_str) == Some(uid))
            .collect();
        sbs.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        for s in sbs {
            if let Ok(st) = self.runtime.sandbox_status(&s.id).await {
                rt.sandboxes.push(st);
            }
        }
        let containers = self
            .runtime
            .list_containers()
            .await
            .map_err(|e| e.message().to_string())?;
        let mut cs: Vec<_> = containers
            .into_iter()
            .filter(|c| c.labels.get(POD_UID).map(String::as_str) == Some(uid))
            .collect();
        cs.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        for c in cs {
            if let Ok(mut st) = self.runtime.container_status(&c.id).await {
                // An exited container's termination message, as the runtime leaves it to
                // the kubelet.
                let exited = st.state == crate::cri::api::ContainerState::ContainerExited as i32;
                if exited && st.message.is_empty() {
                    let path = st
                        .annotations
                        .get(crate::cri::TERMINATION_MESSAGE_PATH)
                        .cloned()
                        .unwrap_or_default();
                    let fallback = st
                        .annotations
                        .get(crate::kuberuntime::termination::POLICY)
                        .is_some_and(|p| p == "FallbackToLogsOnError");
                    if !path.is_empty() {
                        st.message = crate::kuberuntime::termination::message(&st, &path, fallback);
                    }
                }
                rt.containers.push(Instance {
                    sandbox: c.pod_sandbox_id.clone(),
                    status: st,
                });
            }
        }
        Ok(rt)
    }

    pub fn host_ip(&self) -> String {
        if self.node_ip.is_empty() {
            "127.0.0.1".into()
        } else {
            self.node_ip.clone()
        }
    }

    /// The uid of the static pod a mirror pod stands for (its worker handles the mirror).
    pub fn static_pod_of(&self, mirror: &Pod) -> Option<String> {
        self.static_pods
            .lock()
            .unwrap()
            .iter()
            .find(|(_, p)| {
                p.metadata.namespace == mirror.metadata.namespace
                    && p.metadata.name == mirror.metadata.name
            })
            .map(|(uid, _)| uid.clone())
    }

    /// The mirror pod of a static pod, or the pod itself (where status goes).
    pub fn api_pod(&self, pod: &Pod) -> Option<Arc<Pod>> {
        let p = self.pods.store.get_in(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
        )?;
        let same = if is_static(pod) {
            is_mirror(&p)
        } else {
            p.metadata.uid == pod.metadata.uid
        };
        same.then_some(p)
    }

    /// The node object's uid (for lease owner references), once registered.
    pub async fn node(&self) -> Option<Node> {
        Api::<Node>::all(self.client.clone())
            .get_opt(&self.node_name)
            .await
            .ok()
            .flatten()
    }
}

pub fn is_mirror(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

pub fn is_static(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SOURCE))
        .is_some_and(|s| s != "api")
}
