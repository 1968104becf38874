//! The ResourceQuota controller (upstream `pkg/controller/resourcequota`): recounts each
//! quota's `status.used` from the namespace's objects, for the resources named in
//! `spec.hard` (`status.hard` mirrors it). A quota is recounted when it is created or its
//! spec changes, when an object it tracks changes or goes away (replenishment: the
//! admission plugin charges at creation, only a recount gives usage back; resources
//! beyond the typed monitors are watched once a `count/` quota names them), and every
//! `--resource-quota-sync-period`.

use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::GroupResource;
use apimachinery::resource::Quantity;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::discovery::Discovery;
use quota::{ResourceList, add_into, matches_scopes, quantities, usage};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The typed stores of the resources the core evaluators know.
pub struct Monitors {
    pub pods: Arc<Informer<Pod>>,
    pub services: Arc<Informer<Service>>,
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub config_maps: Arc<Informer<ConfigMap>>,
    pub secrets: Arc<Informer<Secret>>,
    pub controllers: Arc<Informer<ReplicationController>>,
}

pub struct ResourceQuotaController {
    client: kube::Client,
    quotas: Arc<Informer<ResourceQuota>>,
    monitors: Monitors,
    queue: Arc<Queue>,
    resync: Duration,
    /// `resource.group` -> how to list it, for `count/<resource>.<group>` quotas.
    discovered: Mutex<HashMap<String, ApiResource>>,
    /// Watches of those resources, started when a quota first counts them, so a change
    /// (a deletion above all) recounts the namespace's quotas at once (upstream's
    /// QuotaMonitor keeps an informer per quotable resource).
    dynamic_monitors: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Drop for ResourceQuotaController {
    fn drop(&mut self) {
        for (_, task) in self.dynamic_monitors.lock().unwrap().drain() {
            task.abort();
        }
    }
}

/// Which core resource a quota key is charged by, if one of the typed monitors.
fn core_resource(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix("count/").unwrap_or(name);
    Some(match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => "pods",
        n if n.starts_with("requests.") && n != "requests.storage" => "pods",
        n if n.starts_with("limits.") || n.starts_with("hugepages-") => "pods",
        "services" | "services.loadbalancers" | "services.nodeports" => "services",
        "persistentvolumeclaims" | "requests.storage" => "persistentvolumeclaims",
        n if n.contains(".storageclass.storage.k8s.io/") => "persistentvolumeclaims",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        _ => return None,
    })
}

fn in_namespace<K: kube::Resource + serde::Serialize>(items: Vec<Arc<K>>, ns: &str) -> Vec<Value> {
    items
        .into_iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
        .collect()
}

impl ResourceQuotaController {
    pub fn new(
        client: kube::Client,
        quotas: Arc<Informer<ResourceQuota>>,
        monitors: Monitors,
        resync: Duration,
    ) -> Arc<Self> {
        let queue = Queue::named("resource_quota_primary");
        {
            let q = queue.clone();
            quotas.add_handler(move |rq, deleted| {
                let spec_hard = rq.spec.as_ref().and_then(|s| s.hard.as_ref());
                let status_hard = rq.status.as_ref().and_then(|s| s.hard.as_ref());
                if !deleted && (spec_hard != status_hard || rq.status.is_none()) {
                    q.add(key(rq));
                }
            });
        }
        // Replenishment: any change of a tracked object recounts the namespace's quotas.
        macro_rules! watch_for_replenishment {
            ($informer:expr) => {{
                let (q, quotas) = (queue.clone(), quotas.clone());
                $informer.add_handler(move |o, _| {
                    for rq in quotas.store.state() {
                        if rq.metadata.namespace == o.metadata.namespace {
                            q.add(key(rq.as_ref()));
                        }
                    }
                });
            }};
        }
        watch_for_replenishment!(monitors.pods);
        watch_for_replenishment!(monitors.services);
        watch_for_replenishment!(monitors.claims);
        watch_for_replenishment!(monitors.config_maps);
        watch_for_replenishment!(monitors.secrets);
        watch_for_replenishment!(monitors.controllers);
        Arc::new(ResourceQuotaController {
            client,
            quotas,
            monitors,
            queue,
            resync,
            discovered: Mutex::default(),
            dynamic_monitors: Mutex::default(),
        })
    }

    /// The objects of one resource in a namespace, as JSON.
    async fn objects(&self, resource: &str, ns: &str) -> Result<Vec<Value>, String> {
        let m = &self.monitors;
        Ok(match resource {
            "pods" => in_namespace(m.pods.store.state(), ns),
            "services" => in_namespace(m.services.store.state(), ns),
            "persistentvolumeclaims" => in_namespace(m.claims.store.state(), ns),
            "configmaps" => in_namespace(m.config_maps.store.state(), ns),
            "secrets" => in_namespace(m.secrets.store.state(), ns),
            "replicationcontrollers" => in_namespace(m.controllers.store.state(), ns),
            "resourcequotas" => in_namespace(self.quotas.store.state(), ns),
            other => self.list_other(other, ns).await?,
        })
    }

    /// Lists `resource.group` (a `count/` quota on a resource no typed monitor covers).
    async fn list_other(&self, resource: &str, ns: &str) -> Result<Vec<Value>, String> {
        let found = self.discovered.lock().unwrap().get(resource).cloned();
        let ar = match found {
            Some(ar) => ar,
            None => {
                let discovery = Discovery::new(self.client.clone())
                    .run()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut map = self.discovered.lock().unwrap();
                for group in discovery.groups() {
                    for (ar, _) in group.recommended_resources() {
                        let name = if ar.group.is_empty() {
                            ar.plural.clone()
                        } else {
                            format!("{}.{}", ar.plural, ar.group)
                        };
                        map.insert(name, ar);
                    }
                }
                match map.get(resource) {
                    Some(ar) => ar.clone(),
                    // Not served (yet): nothing to count.
                    None => return Ok(Vec::new()),
                }
            }
        };
        self.monitor(resource, &ar);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(list
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// Starts watching `resource` (once): any change recounts the quotas of its namespace.
    fn monitor(&self, resource: &str, ar: &ApiResource) {
        use futures::StreamExt;
        use kube::runtime::WatchStreamExt;
        use kube::runtime::watcher::{self, Event};
        let mut monitors = self.dynamic_monitors.lock().unwrap();
        if monitors.contains_key(resource) {
            return;
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let (queue, quotas) = (self.queue.clone(), self.quotas.clone());
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let ns = match ev {
                    Ok(Event::Apply(o) | Event::Delete(o)) => o.metadata.namespace,
                    _ => continue,
                };
                for rq in quotas.store.state() {
                    if rq.metadata.namespace == ns {
                        queue.add(key(rq.as_ref()));
                    }
                }
            }
        });
        monitors.insert(resource.to_string(), task);
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(rq) = self.quotas.store.get_in(ns, name) else {
            return Ok(());
        };
        let quota = serde_json::to_value(rq.as_ref()).map_err(|e| e.to_string())?;
        let hard = quantities(&quota["spec"]["hard"]);
        // The resources whose objects charge this quota.
        let mut resources: Vec<String> = hard
            .keys()
            .filter_map(|k| match core_resource(k) {
                Some(r) => Some(r.to_string()),
                None => k.strip_prefix("count/").map(String::from),
            })
            .collect();
        resources.sort();
        resources.dedup();
        let mut total = ResourceList::new();
        for resource in &resources {
            let gr = match resource.split_once('.') {
                Some((r, g)) => GroupResource::new(g, r),
                None => GroupResource::new("", resource),
            };
            for obj in self.objects(resource, ns).await? {
                if matches_scopes(&quota, &gr, &obj) {
                    add_into(&mut total, &usage(&gr, &obj));
                }
            }
        }
        let zero = Quantity::from_units(0);
        let used: serde_json::Map<String, Value> = hard
            .keys()
            .map(|k| (k.clone(), total.get(k).unwrap_or(&zero).to_json()))
            .collect();
        let mut status = json!({"hard": quota["spec"]["hard"], "used": used});
        let current = json!({"hard": quota["status"]["hard"], "used": quota["status"]["used"]});
        if same_quantities(&status, &current) {
            return Ok(());
        }
        // A merge patch keeps keys it does not name: drop the ones no longer hard.
        for f in ["hard", "used"] {
            for k in quota["status"][f]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !hard.contains_key(k) {
                    status[f][k] = Value::Null;
                }
            }
        }
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        // The cached resourceVersion makes this a compare-and-swap against admission's
        // charges.
        crate::controller_utils::update_status(&api, rq.as_ref(), &json!({"status": status})).await
    }
}

impl Reconciler for ResourceQuotaController {
    type Error = String;

    fn name(&self) -> &str {
        "resourcequota"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.quotas.clone(),
            self.monitors.pods.clone(),
            self.monitors.services.clone(),
            self.monitors.claims.clone(),
            self.monitors.config_maps.clone(),
            self.monitors.secrets.clone(),
            self.monitors.controllers.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        ResourceQuotaController::sync(self, key)
            .await
            .map(Action::from)
    }

    /// Every quota is recalculated each resync period.
    fn on_synced(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                for rq in me.quotas.store.state() {
                    me.queue.add(key(rq.as_ref()));
                }
                tokio::time::sleep(me.resync).await;
            }
        });
    }
}

/// Equal hard and used lists, compared as quantities ("1000m" == "1").
fn same_quantities(a: &Value, b: &Value) -> bool {
    ["hard", "used"]
        .iter()
        .all(|f| quantities(&a[f]) == quantities(&b[f]))
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a quota: status.hard and the usage of what it counts, within its
    /// scopes.
    #[tokio::test]
    async fn sync_reports_usage() {
        let env = Env::new("quota").await;
        let monitors = Monitors {
            pods: env.informer(),
            services: env.informer(),
            claims: env.informer(),
            config_maps: env.informer(),
            secrets: env.informer(),
            controllers: env.informer(),
        };
        let (pods, config_maps) = (monitors.pods.clone(), monitors.config_maps.clone());
        let quotas = env.informer::<ResourceQuota>();
        let c = ResourceQuotaController::new(
            env.client.clone(),
            quotas.clone(),
            monitors,
            Duration::from_secs(300),
        );
        env.start().await;
        let burstable: Pod = env
            .create(json!({"metadata": {"name": "burstable"}, "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}))
            .await;
        let best_effort: Pod = env
            .create(
                json!({"metadata": {"name": "best-effort"}, "spec": crate::testing::pod_spec()}),
            )
            .await;
        let cm: ConfigMap = env.create(json!({"metadata": {"name": "cm"}})).await;
        env.cached(&pods, &[&burstable, &best_effort]).await;
        env.cached(&config_maps, &[&cm]).await;
        // (quota, spec, want used)
        let cases = [
            (
                "all",
                json!({"hard": {"pods": "10", "requests.cpu": "2", "configmaps": "5"}}),
                json!({"pods": "2", "requests.cpu": "100m", "configmaps": "1"}),
            ),
            (
                "best-effort",
                json!({"hard": {"pods": "10"}, "scopes": ["BestEffort"]}),
                json!({"pods": "1"}),
            ),
        ];
        for (name, spec, want) in cases {
            let q: ResourceQuota = env
                .create(json!({"metadata": {"name": name}, "spec": spec}))
                .await;
            env.cached(&quotas, &[&q]).await;
            env.sync(c.as_ref(), &env.key(name)).await;

            let status = env
                .api::<ResourceQuota>()
                .get(name)
                .await
                .unwrap()
                .status
                .unwrap();
            let used = serde_json::to_value(status.used.unwrap_or_default()).unwrap();
            assert_eq!(used, want, "{name}: used");
            assert_eq!(
                serde_json::to_value(status.hard.unwrap_or_default()).unwrap(),
                spec["hard"],
                "{name}: hard"
            );
        }
    }
}
