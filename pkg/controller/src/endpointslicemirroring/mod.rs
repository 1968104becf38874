//! The EndpointSlice mirroring controller (upstream
//! `pkg/controller/endpointslicemirroring`): Endpoints written by hand (or by another
//! controller) for a Service without a selector are mirrored into EndpointSlices, so
//! that consumers of slices — kube-proxy above all — see them. Slices are managed by
//! `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints, one per port set
//! and address family with at most `--mirroring-max-endpoints-per-subset` endpoints;
//! Endpoints labelled `endpointslice.kubernetes.io/skip-mirror=true` are left alone.

use crate::endpointslice::{Desired, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Target, reconcile};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Upstream's `--mirroring-max-endpoints-per-subset` default.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
/// Labels and annotations not copied from the Endpoints.
const NOT_COPIED: &[&str] = &[
    "endpoints.kubernetes.io/last-change-trigger-time",
    "endpoints.kubernetes.io/over-capacity",
    "kubectl.kubernetes.io/last-applied-configuration",
];

pub struct MirroringController {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    endpoints: Arc<Informer<Endpoints>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: Arc<Queue>,
    max_per_subset: usize,
}

fn endpoint(a: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(ready),
            terminating: Some(false),
        }),
        hostname: a.hostname.clone(),
        node_name: a.node_name.clone(),
        target_ref: a.target_ref.clone(),
        ..Default::default()
    }
}

fn family(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

impl MirroringController {
    pub fn new(
        client: kube::Client,
        services: Arc<Informer<Service>>,
        endpoints: Arc<Informer<Endpoints>>,
        slices: Arc<Informer<EndpointSlice>>,
        max_per_subset: usize,
    ) -> Arc<Self> {
        let queue = Queue::named("endpoint_slice_mirroring");
        let q = queue.clone();
        services.add_handler(move |s, _| q.add(key(s)));
        let q = queue.clone();
        endpoints.add_handler(move |e, _| q.add(key(e)));
        let q = queue.clone();
        slices.add_handler(move |s, _| {
            let l = s.metadata.labels.clone().unwrap_or_default();
            if l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
                && let Some(svc) = l.get(SERVICE_NAME_LABEL)
            {
                q.add(format!(
                    "{}/{svc}",
                    s.metadata.namespace.as_deref().unwrap_or_default()
                ));
            }
        });
        Arc::new(MirroringController {
            client,
            services,
            endpoints,
            slices,
            queue,
            max_per_subset,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .store
            .state()
            .into_iter()
            .filter(|s| {
                let l = s.metadata.labels.clone().unwrap_or_default();
                s.metadata.namespace.as_deref() == Some(ns)
                    && l.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                    && l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
            .collect();
        let svc = self.services.store.get_in(ns, name);
        let eps = self.endpoints.store.get_in(ns, name);
        let selectorless = svc.as_ref().is_some_and(|s| {
            s.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_none_or(|s| s.is_empty())
        });
        let eps = eps.filter(|e| {
            selectorless
                && e.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SKIP_MIRROR_LABEL))
                    .map(String::as_str)
                    != Some("true")
        });
        let Some(eps) = eps else {
            // Nothing (left) to mirror.
            return reconcile(&api, &existing, Vec::new(), &self.target(ns, name, None)).await;
        };
        // One slice group per subset port set and address family.
        let mut groups: BTreeMap<(String, String), (Vec<EndpointPort>, Vec<Endpoint>)> =
            BTreeMap::new();
        for subset in eps.subsets.iter().flatten() {
            let ports: Vec<EndpointPort> = subset
                .ports
                .iter()
                .flatten()
                .map(|p| EndpointPort {
                    name: p.name.clone(),
                    port: Some(p.port),
                    protocol: p.protocol.clone().or_else(|| Some("TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect();
            let port_key = serde_json::to_string(&ports).unwrap_or_default();
            let addresses = subset
                .addresses
                .iter()
                .flatten()
                .map(|a| (a, true))
                .chain(
                    subset
                        .not_ready_addresses
                        .iter()
                        .flatten()
                        .map(|a| (a, false)),
                )
                .take(self.max_per_subset);
            for (a, ready) in addresses {
                let g = groups
                    .entry((family(&a.ip).to_string(), port_key.clone()))
                    .or_insert_with(|| (ports.clone(), Vec::new()));
                g.1.push(endpoint(a, ready));
            }
        }
        let mut desired = Vec::new();
        for ((address_type, _), (ports, endpoints)) in groups {
            for chunk in endpoints.chunks(self.max_per_subset.max(1)) {
                desired.push(Desired {
                    address_type: address_type.clone(),
                    ports: ports.clone(),
                    endpoints: chunk.to_vec(),
                });
            }
        }
        reconcile(&api, &existing, desired, &self.target(ns, name, Some(&eps))).await
    }

    /// Labels, annotations and owner of the mirrored slices.
    fn target<'a>(&self, ns: &'a str, name: &str, eps: Option<&Endpoints>) -> Target<'a> {
        let keep = |m: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
            m.into_iter()
                .flatten()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let mut labels = keep(eps.and_then(|e| e.metadata.labels.as_ref()));
        labels.insert(SERVICE_NAME_LABEL.into(), name.into());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        Target {
            namespace: ns,
            generate_name: format!("{name}-"),
            labels,
            annotations: keep(eps.and_then(|e| e.metadata.annotations.as_ref())),
            owner: OwnerReference {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                name: name.into(),
                uid: eps.and_then(|e| e.metadata.uid.clone()).unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        }
    }
}

impl Reconciler for MirroringController {
    type Error = String;

    fn name(&self) -> &str {
        "endpointslice-mirroring"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.services.clone(),
            self.endpoints.clone(),
            self.slices.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        MirroringController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync: hand-written Endpoints of a selector-less Service are mirrored into a
    /// slice, unless labelled skip-mirror.
    #[tokio::test]
    async fn sync_mirrors_custom_endpoints() {
        for (name, skip, want) in [("mirrored", false, 1), ("skip-mirror", true, 0)] {
            let env = Env::new(&format!("mirror-{name}")).await;
            let (services, endpoints, slices) = (
                env.informer::<Service>(),
                env.informer::<Endpoints>(),
                env.informer::<EndpointSlice>(),
            );
            let c = MirroringController::new(
                env.client.clone(),
                services.clone(),
                endpoints.clone(),
                slices.clone(),
                1000,
            );
            env.start().await;
            let svc: Service = env
                .create(json!({"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 443}]}}))
                .await;
            let mut meta = json!({"name": "ext"});
            if skip {
                meta["labels"] = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
            }
            let eps: Endpoints = env
                .create(json!({"metadata": meta, "subsets": [{
                    "addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
                    "ports": [{"port": 443}]}]}))
                .await;
            env.cached(&services, &[&svc]).await;
            env.cached(&endpoints, &[&eps]).await;
            slices.synced().await;
            env.sync(c.as_ref(), &env.key("ext")).await;

            let got = env.list::<EndpointSlice>().await;
            assert_eq!(got.len(), want, "{name}: {got:?}");
            if let Some(slice) = got.first() {
                let labels = slice.metadata.labels.clone().unwrap_or_default();
                assert_eq!(
                    labels.get(MANAGED_BY_LABEL).map(String::as_str),
                    Some("endpointslicemirroring-controller.k8s.io")
                );
                let mut ips: Vec<String> = slice
                    .endpoints
                    .iter()
                    .map(|e| e.addresses[0].clone())
                    .collect();
                ips.sort();
                assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
            }
        }
    }
}
