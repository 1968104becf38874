//! The Endpoints controller (upstream `pkg/controller/endpoint`): the core/v1 Endpoints
//! of every Service with a selector, its selected pods as addresses (ready) or
//! notReadyAddresses, grouped into subsets by the ports they resolve (upstream's
//! repacking: addresses sorted by IP), truncated to 1000 addresses with the
//! `over-capacity` annotation.

use crate::endpointslice::{ports_for, selected_pods};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAX_CAPACITY: usize = 1000;

/// A subset in the making: its ports, ready and not-ready addresses.
type Subset = (
    Vec<EndpointPort>,
    Vec<EndpointAddress>,
    Vec<EndpointAddress>,
);
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

pub struct EndpointsController {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: Arc<Queue>,
}

impl EndpointsController {
    pub fn new(
        client: kube::Client,
        services: Arc<Informer<Service>>,
        pods: Arc<Informer<Pod>>,
        endpoints: Arc<Informer<Endpoints>>,
    ) -> Arc<Self> {
        let queue = Queue::named("endpoint");
        let q = queue.clone();
        services.add_handler(move |s, _| q.add(key(s)));
        let (q, svcs) = (queue.clone(), services.clone());
        pods.add_handler(move |p, _| {
            for s in svcs.store.state() {
                let sel = s.spec.as_ref().and_then(|s| s.selector.as_ref());
                if s.metadata.namespace == p.metadata.namespace
                    && sel.is_some_and(|sel| {
                        !sel.is_empty()
                            && sel.iter().all(|(k, v)| {
                                p.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v)
                            })
                    })
                {
                    q.add(key(s.as_ref()));
                }
            }
        });
        Arc::new(EndpointsController {
            client,
            services,
            pods,
            endpoints,
            queue,
        })
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let current = self.endpoints.store.get_in(ns, name);
        let svc = self.services.store.get_in(ns, name);
        let Some(svc) = svc else {
            if current.is_some() {
                let _ = api.delete(name, &DeleteParams::default()).await;
            }
            return Ok(());
        };
        if svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_none_or(|s| s.is_empty())
        {
            // Services without selectors have user-managed Endpoints.
            return Ok(());
        }
        let publish = svc
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        // Ports -> (ready, not ready) addresses.
        let mut subsets: BTreeMap<String, Subset> = BTreeMap::new();
        let mut total = 0;
        for ep in selected_pods(&svc, &self.pods.store.state()) {
            if ep.terminating && !publish {
                continue;
            }
            if total >= MAX_CAPACITY {
                break;
            }
            total += 1;
            let ports: Vec<EndpointPort> = ports_for(&svc, &ep.pod)
                .into_iter()
                .map(|p| EndpointPort {
                    name: p.name.filter(|n| !n.is_empty()),
                    port: p.port.unwrap_or(0),
                    protocol: p.protocol,
                    app_protocol: p.app_protocol,
                })
                .collect();
            let address = EndpointAddress {
                ip: ep.ip.clone(),
                node_name: ep
                    .pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .filter(|n| !n.is_empty()),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: ep.pod.metadata.namespace.clone(),
                    name: ep.pod.metadata.name.clone(),
                    uid: ep.pod.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let entry = subsets
                .entry(serde_json::to_string(&ports).unwrap_or_default())
                .or_insert_with(|| (ports, Vec::new(), Vec::new()));
            if ep.ready || publish {
                entry.1.push(address);
            } else {
                entry.2.push(address);
            }
        }
        let by_ip = |a: &EndpointAddress, b: &EndpointAddress| a.ip.cmp(&b.ip);
        let subsets: Vec<EndpointSubset> = subsets
            .into_values()
            .map(|(mut ports, mut ready, mut not_ready)| {
                ready.sort_by(by_ip);
                not_ready.sort_by(by_ip);
                ports.sort_by(|a, b| a.name.cmp(&b.name));
                EndpointSubset {
                    addresses: Some(ready).filter(|v| !v.is_empty()),
                    not_ready_addresses: Some(not_ready).filter(|v| !v.is_empty()),
                    ports: Some(ports).filter(|v| !v.is_empty()),
                }
            })
            .collect();
        let mut annotations = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.clone())
            .unwrap_or_default();
        if total >= MAX_CAPACITY {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let labels = svc.metadata.labels.clone();
        let subsets = Some(subsets).filter(|s| !s.is_empty());
        match current {
            Some(c)
                if c.subsets == subsets
                    && c.metadata.labels == labels
                    && c.metadata.annotations.clone().unwrap_or_default() == annotations =>
            {
                Ok(())
            }
            Some(c) => {
                let mut next = (*c).clone();
                next.subsets = subsets;
                next.metadata.labels = labels;
                next.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
                api.replace(name, &PostParams::default(), &next)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            None => {
                let e = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        namespace: Some(ns.into()),
                        labels,
                        annotations: Some(annotations).filter(|a| !a.is_empty()),
                        ..Default::default()
                    },
                    subsets,
                };
                match api.create(&PostParams::default(), &e).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(err)) if err.code == 409 => {
                        Err("endpoints already exist; retrying".into())
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
        }
    }
}

impl Reconciler for EndpointsController {
    type Error = String;

    fn name(&self) -> &str {
        "endpoints"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.services.clone(),
            self.pods.clone(),
            self.endpoints.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        EndpointsController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use k8s_openapi::api::core::v1::EndpointAddress;
    use serde_json::json;

    /// One sync: the Endpoints of a Service with a selector list its pods by readiness
    /// on the target port; a Service without one gets none; a Service gone takes its
    /// Endpoints along.
    #[tokio::test]
    async fn sync_writes_endpoints_of_selected_pods() {
        // (case, service has a selector, service deleted before the sync)
        let cases = [
            ("selector", true, false),
            ("no-selector", false, false),
            ("deleted", true, true),
        ];
        for (name, with_selector, deleted) in cases {
            let env = Env::new(&format!("ep-{name}")).await;
            let (services, pods, endpoints) = (
                env.informer::<Service>(),
                env.informer::<Pod>(),
                env.informer::<Endpoints>(),
            );
            let c = EndpointsController::new(
                env.client.clone(),
                services.clone(),
                pods.clone(),
                endpoints.clone(),
            );
            env.start().await;
            let (svc, web_pods) = env.web_service_and_pods(with_selector).await;
            env.cached(&pods, &web_pods.iter().collect::<Vec<_>>())
                .await;
            if deleted {
                let eps: Endpoints = env.create(json!({"metadata": {"name": "web"}})).await;
                env.cached(&endpoints, &[&eps]).await;
                env.api::<Service>()
                    .delete("web", &Default::default())
                    .await
                    .unwrap();
                crate::testing::wait("the deletion", || {
                    services
                        .store
                        .get_in(&env.ns, "web")
                        .is_none()
                        .then_some(())
                })
                .await;
            } else {
                env.cached(&services, &[&svc]).await;
            }
            endpoints.synced().await;
            env.sync(c.as_ref(), &env.key("web")).await;

            let got = env.api::<Endpoints>().get_opt("web").await.unwrap();
            if !with_selector || deleted {
                assert!(got.is_none(), "{name}: {got:?}");
                continue;
            }
            let subsets = got.expect("endpoints").subsets.unwrap_or_default();
            assert_eq!(subsets.len(), 1, "{name}: {subsets:?}");
            let ips = |a: &Option<Vec<EndpointAddress>>| {
                a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
            };
            assert_eq!(ips(&subsets[0].addresses), ["10.1.0.1"], "{name}");
            assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.1.0.2"], "{name}");
            let ports = subsets[0].ports.clone().unwrap_or_default();
            assert_eq!(
                ports.iter().map(|p| p.port).collect::<Vec<_>>(),
                [8080],
                "{name}"
            );
        }
    }
}
