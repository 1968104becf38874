//! Keeps the served API in step with the stored CustomResourceDefinitions (upstream's
//! `crdHandler`, naming, establishing and finalizer controllers): every served version of
//! every CRD is installed as a resource, its status says `NamesAccepted` and
//! `Established`, and a deleted CRD first loses all its objects (finalizer
//! `customresourcecleanup.apiextensions.k8s.io`), then stops being served.

use crate::registry::customresource::{CustomResourceStrategy, ScalePaths};
use crate::registry::version::ServedVersion;
use apiserver::endpoints::{ApiResource, ApiServer, SubresourceHandler};
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use apiserver::registry::options::{DeleteOptions, ListOptions};
use apiserver::registry::scale::{ScaleHandler, SelectorSource};
use apiserver::registry::strategy::Strategy;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Creates the storage (store + watch cache) of a custom resource.
pub type InstallFn = Arc<dyn Fn(Arc<dyn Strategy>) -> Arc<Registry> + Send + Sync>;

type Key = (String, String, String);

struct Installed {
    /// What the installed resources were built from.
    spec: Value,
    storage: Arc<Registry>,
    keys: Vec<Key>,
}

pub struct CrdController {
    pub api: Arc<ApiServer>,
    pub crds: Arc<Registry>,
    pub install: InstallFn,
    /// Resolves conversion webhooks' `clientConfig.service`.
    pub services: Arc<Registry>,
    installed: HashMap<String, Installed>,
}

fn storage_version(crd: &Value) -> Option<String> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .map(String::from)
}

fn has_condition(crd: &Value, t: &str) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == t && c["status"] == "True")
}

fn condition(t: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": t, "status": status, "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), "reason": reason, "message": message})
}

impl CrdController {
    pub fn new(
        api: Arc<ApiServer>,
        crds: Arc<Registry>,
        install: InstallFn,
        services: Arc<Registry>,
    ) -> Self {
        Self {
            api,
            crds,
            install,
            services,
            installed: HashMap::new(),
        }
    }

    /// Follows the CRDs until the process ends; any failure restarts from a fresh list.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.follow().await {
                tracing::warn!(error = %e.message, "CRD controller restarting");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn follow(&mut self) -> Result<(), apimachinery::StatusError> {
        let list = self.crds.list(None, &ListOptions::default()).await?;
        let items: Vec<Value> = list.items.iter().map(|o| o.value.clone()).collect();
        self.reconcile(&items).await;
        let filter = self.crds.filter(None, &ListOptions::default())?;
        let mut w = self
            .crds
            .watch(filter, Some(list.resource_version), false)
            .await?;
        // Any change: re-read the whole (small) set and reconcile it.
        match w.rx.recv().await {
            Some(Ok(_)) | None => Ok(()),
            Some(Err(e)) => Err(e),
        }
    }

    /// Brings the served resources and the CRDs' status in line with `crds`.
    pub async fn reconcile(&mut self, crds: &[Value]) {
        let mut seen = Vec::new();
        for crd in crds {
            let name = meta::name(crd).to_string();
            seen.push(name.clone());
            if !meta::meta(crd)["deletionTimestamp"].is_null() {
                self.finalize(crd).await;
                continue;
            }
            let changed = self
                .installed
                .get(&name)
                .is_none_or(|i| i.spec != crd["spec"]);
            if changed {
                self.serve(&name, crd);
            }
            self.establish(crd).await;
        }
        let gone: Vec<String> = self
            .installed
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for name in gone {
            self.unserve(&name);
        }
    }

    /// Installs (or reinstalls after a spec change) every served version of a CRD.
    fn serve(&mut self, name: &str, crd: &Value) {
        let Some(sv) = storage_version(crd) else {
            return;
        };
        let Some(storage) = CustomResourceStrategy::from_crd(crd, &sv) else {
            return;
        };
        let storage_api_version = storage.info.gvk.api_version();
        let storage: Arc<dyn Strategy> = Arc::new(storage);
        // A spec change keeps the store and watch cache; only the strategy is new.
        let reg = match self.installed.get(name) {
            Some(old)
                if old
                    .storage
                    .store
                    .prefix
                    .ends_with(&format!("{}/", storage.info().storage_path)) =>
            {
                Arc::new(Registry::new(
                    storage,
                    old.storage.store.clone(),
                    old.storage.cacher.clone(),
                ))
            }
            _ => {
                if let Some(old) = self.installed.remove(name) {
                    self.stop(old);
                }
                (self.install)(storage)
            }
        };
        let webhook = crate::conversion::Webhook::from_crd(crd, &self.services);
        let mut resources = Vec::new();
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            if v["served"] != true {
                continue;
            }
            let version = v["name"].as_str().unwrap_or_default();
            let Some(served) = CustomResourceStrategy::from_crd(crd, version) else {
                continue;
            };
            let mut res = ApiResource::new(reg.clone());
            for sub in &served.info.subresources {
                if let Some(h) = subresource(sub, &served.scale, &reg) {
                    res.subresources.insert(sub.clone(), h);
                }
            }
            let key = (
                served.info.gvk.group.clone(),
                served.info.gvk.version.clone(),
                served.info.resource.clone(),
            );
            if version != sv {
                res.view = Some(Arc::new(ServedVersion {
                    served,
                    storage_api_version: storage_api_version.clone(),
                    webhook: webhook.clone(),
                }));
            }
            resources.push((key, Arc::new(res)));
        }
        let old_keys = self
            .installed
            .get(name)
            .map(|i| i.keys.clone())
            .unwrap_or_default();
        let keys: Vec<Key> = resources.iter().map(|(k, _)| k.clone()).collect();
        self.api.update_resources(|all| {
            for k in &old_keys {
                all.remove(k);
            }
            all.extend(resources);
        });
        tracing::info!(crd = name, versions = ?keys.iter().map(|k| &k.1).collect::<Vec<_>>(), "serving custom resource");
        self.installed.insert(
            name.to_string(),
            Installed {
                spec: crd["spec"].clone(),
                storage: reg,
                keys,
            },
        );
    }

    fn unserve(&mut self, name: &str) {
        if let Some(old) = self.installed.remove(name) {
            self.api.update_resources(|all| {
                for k in &old.keys {
                    all.remove(k);
                }
            });
            self.stop(old);
            tracing::info!(crd = name, "custom resource no longer served");
        }
    }

    fn stop(&self, old: Installed) {
        if let Some(c) = &old.storage.cacher {
            c.stop();
        }
    }

    /// Sets acceptedNames, storedVersions and the NamesAccepted/Established conditions.
    async fn establish(&self, crd: &Value) {
        let names = &crd["spec"]["names"];
        let mut accepted = names.clone();
        if accepted["singular"].as_str().unwrap_or_default().is_empty() {
            accepted["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
        }
        if accepted["listKind"].as_str().unwrap_or_default().is_empty() {
            accepted["listKind"] = json!(format!(
                "{}List",
                names["kind"].as_str().unwrap_or_default()
            ));
        }
        let sv = storage_version(crd).unwrap_or_default();
        let stored = crd["status"]["storedVersions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up_to_date = crd["status"]["acceptedNames"] == accepted
            && has_condition(crd, "Established")
            && has_condition(crd, "NamesAccepted")
            && stored.contains(&json!(sv));
        if up_to_date {
            return;
        }
        let name = meta::name(crd).to_string();
        let res = self
            .crds
            .guaranteed_update(None, &name, Part::Status, false, &mut |cur| {
                let mut next = cur.cloned().ok_or_else(|| apimachinery::StatusError::internal("gone"))?;
                let mut stored = next["status"]["storedVersions"].as_array().cloned().unwrap_or_default();
                if !stored.contains(&json!(sv)) {
                    stored.push(json!(sv));
                }
                next["status"] = json!({
                    "acceptedNames": accepted,
                    "storedVersions": stored,
                    "conditions": [
                        condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                        condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
                    ],
                });
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(crd = name, error = %e.message, "updating CRD status");
        }
    }

    /// Deletes every object of a CRD being deleted, then releases the CRD.
    async fn finalize(&mut self, crd: &Value) {
        let name = meta::name(crd).to_string();
        if !meta::finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER) {
            return;
        }
        if let Some(inst) = self.installed.get(&name) {
            let reg = inst.storage.clone();
            let opts = DeleteOptions {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            match reg.list(None, &ListOptions::default()).await {
                Ok(list) => {
                    for o in &list.items {
                        let ns = meta::namespace(&o.value);
                        let ns = (!ns.is_empty()).then_some(ns);
                        if let Err(e) = reg.delete(ns, meta::name(&o.value), &opts).await
                            && e.code != 404
                        {
                            tracing::warn!(crd = name, error = %e.message, "deleting custom resource");
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(crd = name, error = %e.message, "listing custom resources");
                    return;
                }
            }
        }
        self.unserve(&name);
        let res = self
            .crds
            .guaranteed_update(None, &name, Part::Whole, false, &mut |cur| {
                let mut next = cur
                    .cloned()
                    .ok_or_else(|| apimachinery::StatusError::internal("gone"))?;
                let m = meta::meta_mut(&mut next);
                if let Some(f) = m.get_mut("finalizers").and_then(Value::as_array_mut) {
                    f.retain(|f| f != CLEANUP_FINALIZER);
                }
                m.remove("resourceVersion");
                Ok(next)
            })
            .await;
        if let Err(e) = res
            && e.code != 404
        {
            tracing::warn!(crd = name, error = %e.message, "removing the cleanup finalizer");
        }
    }
}

fn subresource(
    sub: &str,
    scale: &Option<ScalePaths>,
    reg: &Arc<Registry>,
) -> Option<Arc<dyn SubresourceHandler>> {
    match (sub, scale) {
        ("scale", Some(p)) => Some(Arc::new(ScaleHandler {
            registry: reg.clone(),
            spec_replicas: p.spec_replicas.clone(),
            status_replicas: p.status_replicas.clone(),
            selector: match &p.label_selector {
                Some(path) => SelectorSource::String(path.clone()),
                None => SelectorSource::None,
            },
        })),
        _ => None,
    }
}
