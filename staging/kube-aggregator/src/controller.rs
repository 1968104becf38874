//! The aggregator's controller loop (upstream's autoregister, local and remote
//! availability controllers, run in the apiserver as they are upstream): each round
//! registers the local APIServices, checks every APIService, writes the `Available`
//! conditions that changed and publishes the routes; a round runs on any change of
//! APIServices, of the Services and EndpointSlices they name, or of the served
//! resources, and every 30 s (5 s while an APIService is unavailable) to notice servers
//! that went away.

use crate::available::Condition;
use crate::{Aggregator, Remote, State, autoregister, group_version};
use apiserver::endpoints::ApiServer;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::options::{DeleteOptions, ListOptions};
use apiserver::server::aggregation::GroupVersion;
use apiserver::storage::cacher::{CacheWatch, WatchItem, WatchType};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_secs(5);
/// What an available server answered.
struct Probed {
    /// Its `APIResourceList` for the group version.
    resources: Option<Value>,
    openapi_v3: bool,
}

/// The aggregator's own requests: JSON, as `system:kube-aggregator` in `system:masters`.
fn aggregator_headers() -> Vec<(&'static str, String)> {
    [
        ("Accept", "application/json"),
        ("X-Remote-User", "system:kube-aggregator"),
        ("X-Remote-Group", "system:masters"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// Whether the server's `/openapi/v3` root names the group version (upstream's OpenAPI v3
/// aggregator downloads each server's root and serves the documents it lists).
async fn lists_openapi_v3(
    host: &str,
    port: u16,
    server_name: &str,
    tls: &tokio_rustls::TlsConnector,
    group: &str,
    version: &str,
) -> bool {
    let target = component_base::proxy::Target {
        https: true,
        host: host.to_string(),
        port,
        path_and_query: "/openapi/v3".into(),
        server_name: Some(server_name.to_string()),
    };
    let headers = aggregator_headers();
    match component_base::proxy::get(&target, tls.clone(), &headers, PROBE_TIMEOUT).await {
        Ok((200, body)) => serde_json::from_slice::<Value>(&body)
            .is_ok_and(|root| root["paths"][format!("apis/{group}/{version}")].is_object()),
        _ => false,
    }
}

/// Upstream's discovery check: five attempts at once, each with a 5 s client timeout.
const ATTEMPTS: usize = 5;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Controller {
    pub aggregator: Arc<Aggregator>,
    /// Set once every served group version has its local APIService, Available (the
    /// `autoregister-completion` readiness check).
    pub registered: Arc<std::sync::atomic::AtomicBool>,
    pub api: Arc<ApiServer>,
    pub apiservices: Arc<Registry>,
    pub services: Arc<Registry>,
    pub endpointslices: Arc<Registry>,
}

async fn list(reg: &Registry, ns: Option<&str>, opts: &ListOptions) -> Result<Vec<Value>, String> {
    let r = reg.list(ns, opts).await.map_err(|e| e.message)?;
    Ok(r.items.iter().map(|o| o.value.clone()).collect())
}

async fn watch_all(reg: &Registry) -> Result<CacheWatch, String> {
    let filter = reg
        .filter(None, &ListOptions::default())
        .map_err(|e| e.message)?;
    reg.watch(filter, None, false).await.map_err(|e| e.message)
}

/// The Service an APIService names: (namespace, name, port).
fn service_ref(a: &Value) -> Option<(String, String, i32)> {
    let s = a["spec"]["service"].as_object()?;
    let str_of = |k: &str| {
        s.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let port = s.get("port").and_then(Value::as_i64).unwrap_or(443) as i32;
    Some((str_of("namespace"), str_of("name"), port))
}

impl Controller {
    pub async fn run(self) {
        let mut resources = self.api.watch_resources();
        loop {
            // Watches first, so that nothing changing during the round goes unnoticed.
            let watches = async {
                Ok::<_, String>((
                    watch_all(&self.apiservices).await?,
                    watch_all(&self.services).await?,
                    watch_all(&self.endpointslices).await?,
                ))
            };
            let (mut apiservices, mut services, mut slices) = match watches.await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "aggregator: watching APIServices");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            resources.mark_unchanged();
            let (seen, wait) = match self.round().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "aggregator: checking APIServices");
                    (Seen::default(), Duration::from_secs(1))
                }
            };
            let deadline = tokio::time::sleep(wait);
            tokio::pin!(deadline);
            // Until something this round depended on changes.
            loop {
                let changed = tokio::select! {
                    _ = &mut deadline => true,
                    _ = resources.changed() => true,
                    e = apiservices.rx.recv() => matters(e, |i| seen.apiservice_changed(i)),
                    e = services.rx.recv() => matters(e, |i| seen.names_service(&i.obj.value)),
                    e = slices.rx.recv() => matters(e, |i| seen.names_slice(&i.obj.value)),
                };
                if changed {
                    break;
                }
            }
        }
    }

    /// One pass; returns what it looked at and when to look again.
    async fn round(&self) -> Result<(Seen, Duration), String> {
        let priorities = self.aggregator.config.priorities;
        let served: BTreeSet<(String, String)> = self
            .api
            .resources()
            .keys()
            .map(|(g, v, _)| (g.clone(), v.clone()))
            .collect();
        let existing = list(&self.apiservices, None, &ListOptions::default()).await?;
        let plan = autoregister::plan(&served, &existing, priorities);
        let unchanged = plan == autoregister::Plan::default();
        for want in plan.apply {
            self.upsert(want).await;
        }
        for name in plan.delete {
            if let Err(e) = self
                .apiservices
                .delete(None, &name, &DeleteOptions::default())
                .await
            {
                tracing::warn!(apiservice = %name, error = %e.message, "removing a managed APIService");
            }
        }
        // Read again only when the plan wrote something.
        let items = match unchanged {
            true => existing,
            false => list(&self.apiservices, None, &ListOptions::default()).await?,
        };
        let checks = items.iter().map(|a| self.check(a));
        let results = futures::future::join_all(checks).await;
        let mut state = State::default();
        let mut seen = Seen::default();
        let mut any_down = false;
        let mut availability = Vec::new();
        for (a, (cond, remote, probed)) in items.iter().zip(results) {
            let name = a["metadata"]["name"].as_str().unwrap_or_default();
            self.write_condition(a, &cond).await;
            any_down |= cond.status != "True";
            availability.push((name.to_string(), cond.status == "True"));
            let (g, v) = group_version(a);
            seen.apiservices.insert(name.to_string(), a["spec"].clone());
            if let Some((ns, svc, _)) = service_ref(a) {
                seen.services.insert((ns, svc));
            }
            state.versions.push(GroupVersion {
                group: g.clone(),
                version: v.clone(),
                group_priority: a["spec"]["groupPriorityMinimum"].as_i64().unwrap_or(0) as i32,
                version_priority: a["spec"]["versionPriority"].as_i64().unwrap_or(0) as i32,
                remote: remote.is_some(),
                resources: probed.as_ref().and_then(|p| p.resources.clone()),
                openapi_v3: probed.is_some_and(|p| p.openapi_v3),
            });
            if let Some(r) = remote {
                state.remote.insert((g, v), r);
            }
        }
        let local_done = items
            .iter()
            .zip(&availability)
            .filter(|(a, _)| service_ref(a).is_none())
            .all(|(_, (_, ok))| *ok);
        let all_served = served.iter().all(|(g, v)| {
            items
                .iter()
                .any(|a| group_version(a) == (g.clone(), v.clone()))
        });
        if local_done && all_served {
            self.registered
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.aggregator.set_state(state);
        self.aggregator.metrics.set(&availability);
        Ok((seen, if any_down { RETRY } else { RESYNC }))
    }

    /// Creates a local APIService, or puts a managed one back to what it should be.
    async fn upsert(&self, want: Value) {
        let name = want["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match self.apiservices.create(None, want.clone(), false).await {
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::warn!(apiservice = %name, error = %e.message, "registering a local APIService");
                return;
            }
            Ok(_) => return,
        }
        let r = self
            .apiservices
            .guaranteed_update(None, &name, Part::Main, false, &mut |cur| {
                let mut next = cur.cloned().unwrap_or_else(|| want.clone());
                next["spec"] = want["spec"].clone();
                next["metadata"]["labels"][autoregister::MANAGED_LABEL] =
                    want["metadata"]["labels"][autoregister::MANAGED_LABEL].clone();
                Ok(next)
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(apiservice = %name, error = %e.message, "registering a local APIService");
        }
    }

    /// An APIService's condition, its route when remote, and what its server answered.
    async fn check(&self, a: &Value) -> (Condition, Option<Remote>, Option<Probed>) {
        let Some((ns, svc_name, port)) = service_ref(a) else {
            return (Condition::local(), None, None);
        };
        let name = a["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let svc = self.services.get(Some(&ns), &svc_name).await.ok();
        let mut selector = ListOptions::cached();
        selector.label_selector = apimachinery::labels::Selector::parse(&format!(
            "kubernetes.io/service-name={svc_name}"
        ))
        .unwrap_or_default();
        let slices = list(&self.endpointslices, Some(&ns), &selector)
            .await
            .unwrap_or_default();
        let target = match &svc {
            Some(s) => crate::resolver::resolve(
                self.aggregator.config.routing,
                &svc_name,
                s,
                &slices,
                port,
            ),
            None => Err(format!("service {svc_name:?} not found")),
        };
        let tls = crate::proxy::tls_for(&a["spec"], self.aggregator.config.proxy_client.as_ref());
        let mut remote = Remote {
            apiservice: name,
            namespace: ns.clone(),
            service: svc_name.clone(),
            available: false,
            target: target.clone(),
            tls: tls.clone(),
        };
        if let Some(c) =
            crate::available::check_service(&ns, &svc_name, port, svc.as_ref(), &slices)
        {
            return (c, Some(remote), None);
        }
        let (g, v) = group_version(a);
        let path = match g.is_empty() {
            true => format!("/api/{v}"),
            false => format!("/apis/{g}/{v}"),
        };
        let (host, port, tls) = match (&target, &tls) {
            (Ok((host, port)), Ok(tls)) => (host, *port, tls),
            (Err(e), _) | (_, Err(e)) => {
                return (Condition::failed_discovery(e.clone()), Some(remote), None);
            }
        };
        let server_name = format!("{svc_name}.{ns}.svc");
        match probe(host, port, &path, &server_name, tls).await {
            Ok(resources) => {
                remote.available = true;
                let openapi_v3 = lists_openapi_v3(host, port, &server_name, tls, &g, &v).await;
                let probed = Probed {
                    resources,
                    openapi_v3,
                };
                (Condition::passed(), Some(remote), Some(probed))
            }
            Err(e) => (Condition::failed_discovery(e), Some(remote), None),
        }
    }

    async fn write_condition(&self, a: &Value, cond: &Condition) {
        let now = apiserver::registry::meta::now_rfc3339();
        let want = cond.apply(&a["status"], &now);
        if want == a["status"] {
            return;
        }
        let current = a["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"));
        if current.is_none_or(|c| c["status"] != cond.status) {
            tracing::info!(apiservice = %a["metadata"]["name"], status = cond.status, reason = cond.reason, message = %cond.message, "changing APIService availability");
        }
        let name = a["metadata"]["name"].as_str().unwrap_or_default();
        let r = self
            .apiservices
            .guaranteed_update(None, name, Part::Status, false, &mut |cur| {
                let mut next = cur.cloned().unwrap_or_default();
                next["status"] = cond.apply(&next["status"], &now);
                Ok(next)
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(apiservice = name, error = %e.message, "updating APIService status");
        }
    }
}

/// Upstream's discovery check: `GET <path>` as `system:kube-aggregator` in
/// `system:masters`, five attempts at once, any 2xx or 3xx passes. Returns the body when
/// it is a document (the group version's resources).
async fn probe(
    host: &str,
    port: u16,
    path: &str,
    server_name: &str,
    tls: &tokio_rustls::TlsConnector,
) -> Result<Option<Value>, String> {
    let url = format!("https://{}{path}", join_host_port(host, port));
    let target = component_base::proxy::Target {
        https: true,
        host: host.to_string(),
        port,
        path_and_query: path.to_string(),
        server_name: Some(server_name.to_string()),
    };
    let headers = aggregator_headers();
    let attempts = (0..ATTEMPTS).map(|_| async {
        match component_base::proxy::get(&target, tls.clone(), &headers, PROBE_TIMEOUT).await {
            Ok((code, body)) if (200..300).contains(&code) => {
                Ok(serde_json::from_slice(&body).ok())
            }
            Ok((code, _)) if (300..400).contains(&code) => Ok(None),
            Ok((code, _)) => Err(format!(
                "failing or missing response from {url}: bad status from {url}: {code}"
            )),
            Err(e) => Err(format!(
                "failing or missing response from {url}: Get {url:?}: {e}"
            )),
        }
    });
    let results = futures::future::join_all(attempts).await;
    let mut last = Err(String::new());
    for r in results {
        if r.is_ok() {
            return r;
        }
        last = r;
    }
    last
}

fn join_host_port(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// Whether a watch event calls for a new round (a closed or failed watch always does).
fn matters(
    e: Option<Result<WatchItem, apimachinery::StatusError>>,
    f: impl Fn(&WatchItem) -> bool,
) -> bool {
    match e {
        Some(Ok(item)) => f(&item),
        _ => true,
    }
}

/// What a round depended on.
#[derive(Default)]
struct Seen {
    /// Spec by APIService name.
    apiservices: HashMap<String, Value>,
    /// Services remote APIServices name.
    services: BTreeSet<(String, String)>,
}

impl Seen {
    /// Our own status writes come back as events; only other changes count.
    fn apiservice_changed(&self, item: &WatchItem) -> bool {
        let a = &item.obj.value;
        let name = a["metadata"]["name"].as_str().unwrap_or_default();
        item.kind == WatchType::Deleted || self.apiservices.get(name) != Some(&a["spec"])
    }

    fn names_service(&self, svc: &Value) -> bool {
        let m = &svc["metadata"];
        let key = (
            m["namespace"].as_str().unwrap_or_default().to_string(),
            m["name"].as_str().unwrap_or_default().to_string(),
        );
        self.services.contains(&key)
    }

    fn names_slice(&self, slice: &Value) -> bool {
        let m = &slice["metadata"];
        let key = (
            m["namespace"].as_str().unwrap_or_default().to_string(),
            m["labels"]["kubernetes.io/service-name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        self.services.contains(&key)
    }
}
