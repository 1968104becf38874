//! In-process test environment for controllers' sync (upstream's controller tests run
//! against fake clients; ours run against the real apiserver, in-process, with its
//! validation, defaulting and admission).
//!
//! Each test gets a namespace of its own on the test binary's shared apiserver, builds
//! its controller over informers from [`Env::informers`], creates objects, waits until
//! the informers hold them, calls `Reconciler::sync` for one key, and asserts what the
//! API then holds.

use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use client_go::events::Recorder;
use client_go::informer_factory::{Object, SharedInformerFactory};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use test_utils::apiserver::TestServer;

pub struct Env {
    pub client: kube::Client,
    /// The test's own namespace.
    pub ns: String,
    pub informers: SharedInformerFactory,
}

impl Env {
    /// A fresh namespace (named after the test) on the shared apiserver.
    pub async fn new(test: &str) -> Env {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let client = TestServer::shared().client();
        let ns = format!("{test}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("test namespace");
        Env {
            informers: SharedInformerFactory::new(client.clone()),
            client,
            ns,
        }
    }

    /// The informer of the test namespace's `K`s.
    pub fn informer<K>(&self) -> Arc<Informer<K>>
    where
        K: Object + kube::Resource<Scope = NamespaceResourceScope>,
    {
        self.informers.namespaced(&self.ns)
    }

    /// The informer of a cluster-scoped `K` (shared with other tests: use unique names).
    pub fn cluster_informer<K: Object>(&self) -> Arc<Informer<K>> {
        self.informers.get()
    }

    pub fn recorder(&self, component: &str) -> Arc<Recorder> {
        let limiter = Arc::new(client_go::flowcontrol::RateLimiter::new(100.0, 100));
        Recorder::new(self.client.clone(), component, "test", limiter)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Object + kube::Resource<Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn cluster_api<K: Object>(&self) -> Api<K> {
        Api::all(self.client.clone())
    }

    /// Creates `obj` (JSON) in the test namespace and returns it as stored.
    pub async fn create<K>(&self, mut obj: Value) -> K
    where
        K: Object + serde::Serialize + kube::Resource<Scope = NamespaceResourceScope>,
    {
        obj["metadata"]["namespace"] = json!(self.ns);
        create(&self.api::<K>(), obj).await
    }

    /// Creates a cluster-scoped `obj` (shared with other tests: use unique names).
    pub async fn create_cluster<K>(&self, obj: Value) -> K
    where
        K: Object + serde::Serialize,
    {
        create(&self.cluster_api::<K>(), obj).await
    }

    /// A pod with these labels, then given a status as the kubelet would report it:
    /// Running with `ip` (if any) and the Ready condition.
    pub async fn running_pod(
        &self,
        name: &str,
        labels: Value,
        ip: Option<&str>,
        ready: bool,
    ) -> Pod {
        let pod: Pod = self
            .create(json!({"metadata": {"name": name, "labels": labels}, "spec": pod_spec()}))
            .await;
        let mut status = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        if let Some(ip) = ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        self.api::<Pod>()
            .patch_status(
                pod.metadata.name.as_deref().unwrap(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("pod status")
    }

    /// Service `web` (port 80 to target 8080, selecting `app=web` if asked) and three
    /// of its pods: ready at 10.1.0.1, unready at 10.1.0.2, and one without an IP yet.
    pub async fn web_service_and_pods(&self, with_selector: bool) -> (Service, Vec<Pod>) {
        let mut spec = json!({"ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
        if with_selector {
            spec["selector"] = json!({"app": "web"});
        }
        let svc: Service = self
            .create(json!({"metadata": {"name": "web"}, "spec": spec}))
            .await;
        let web = json!({"app": "web"});
        let pods = vec![
            self.running_pod("ready", web.clone(), Some("10.1.0.1"), true)
                .await,
            self.running_pod("unready", web.clone(), Some("10.1.0.2"), false)
                .await,
            self.running_pod("no-ip", web, None, false).await,
        ];
        (svc, pods)
    }

    /// Every `K` in the test namespace, by name.
    pub async fn list<K>(&self) -> Vec<K>
    where
        K: Object + kube::Resource<Scope = NamespaceResourceScope>,
    {
        let mut items = self
            .api::<K>()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items;
        items.sort_by_key(|o| o.meta().name.clone());
        items
    }

    /// Starts the informers and waits for their first lists.
    pub async fn start(&self) {
        self.informers.start();
    }

    /// Waits until `informer` holds each object at least as new as given.
    pub async fn cached<K: Object>(&self, informer: &Informer<K>, objects: &[&K]) {
        informer.synced().await;
        let rv = |o: &K| -> u64 {
            o.meta()
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        wait("the informer to catch up", || {
            objects
                .iter()
                .all(|o| {
                    informer
                        .store
                        .get(&key(*o))
                        .is_some_and(|c| rv(&c) >= rv(o))
                })
                .then_some(())
        })
        .await;
    }

    /// Runs one sync of `key`, which must succeed.
    pub async fn sync<R: Reconciler>(&self, r: &R, key: &str) -> Action {
        match r.sync(key).await {
            Ok(a) => a,
            Err(e) => panic!("sync {key}: {e}"),
        }
    }

    /// The test namespace as stored.
    pub async fn namespace(&self) -> Namespace {
        self.cluster_api::<Namespace>()
            .get(&self.ns)
            .await
            .expect("test namespace")
    }

    /// `namespace/name` in the test namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.ns)
    }
}

async fn create<K: Object + serde::Serialize>(api: &Api<K>, obj: Value) -> K {
    let typed: K = serde_json::from_value(obj).expect("test object");
    api.create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", key(&typed)))
}

/// Polls `f` until it returns Some (deadline 20 s).
pub async fn wait<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    test_utils::wait(what, Duration::from_secs(20), f).await
}

/// A pod spec with one container (what validation requires).
pub fn pod_spec() -> Value {
    json!({"containers": [{"name": "c", "image": "busybox"}]})
}

/// A pod template with these labels.
pub fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": pod_spec()})
}

/// A PEM certificate request for `cn` in organizations `orgs` (ECDSA P-256).
pub fn csr_pem(cn: &str, orgs: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    for o in orgs {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    params
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("PEM")
}

/// A CertificateSigningRequest object for `signer` (JSON for [`Env::create_cluster`]).
pub fn csr(name: &str, signer: &str, cn: &str, orgs: &[&str], usages: &[&str]) -> Value {
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(csr_pem(cn, orgs));
    json!({"metadata": {"name": name}, "spec": {
        "request": request, "signerName": signer, "usages": usages}})
}
