//! The EndpointSlice controller (upstream `pkg/controller/endpointslice`): for every
//! Service with a selector, EndpointSlices (`kubernetes.io/service-name`, managed by
//! `endpointslice-controller.k8s.io`, owned by the Service, at most 100 endpoints each)
//! listing the selected pods that have an IP, with ready/serving/terminating conditions,
//! node name, zone and the ports each pod resolves the Service's target ports to.

use crate::controller_utils::is_ready;
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

pub struct EndpointSliceController {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: Arc<Queue>,
}

/// A pod as a Service endpoint: ready unless terminating (or the Service publishes
/// not-ready addresses), serving when ready, terminating once being deleted.
pub struct PodEndpoint {
    pub pod: Arc<Pod>,
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// The Service's pods with an IP, not finished, matching its selector.
pub fn selected_pods(svc: &Service, pods: &[Arc<Pod>]) -> Vec<PodEndpoint> {
    let Some(sel) = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let ns = svc.metadata.namespace.as_deref();
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    pods.iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| {
            sel.iter()
                .all(|(k, v)| p.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v))
        })
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| {
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .filter(|ip| !ip.is_empty())?;
            let terminating = p.metadata.deletion_timestamp.is_some();
            let serving = publish || is_ready(p);
            Some(PodEndpoint {
                pod: p.clone(),
                ip,
                ready: serving && !terminating,
                serving,
                terminating,
            })
        })
        .collect()
}

/// A Service port's target on this pod (a named target port looked up in its
/// containers); None when the pod does not have it.
pub fn target_port(
    pod: &Pod,
    target: Option<&IntOrString>,
    port: i32,
    protocol: &str,
) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port),
    }
}

pub fn ports_for(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port = target_port(pod, sp.target_port.as_ref(), sp.port, &protocol)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(protocol),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

impl EndpointSliceController {
    pub fn new(
        client: kube::Client,
        services: Arc<Informer<Service>>,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        slices: Arc<Informer<EndpointSlice>>,
    ) -> Arc<Self> {
        let queue = Queue::named("endpoint_slice");
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
        let q = queue.clone();
        slices.add_handler(move |sl, _| {
            let labels = sl.metadata.labels.clone().unwrap_or_default();
            if labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
                && let Some(svc) = labels.get(SERVICE_NAME_LABEL)
            {
                q.add(format!(
                    "{}/{svc}",
                    sl.metadata.namespace.as_deref().unwrap_or_default()
                ));
            }
        });
        Arc::new(EndpointSliceController {
            client,
            services,
            pods,
            nodes,
            slices,
            queue,
        })
    }

    fn zone_of(&self, node: &str) -> Option<String> {
        self.nodes.store.get(node).and_then(|n| {
            n.metadata
                .labels
                .as_ref()?
                .get("topology.kubernetes.io/zone")
                .cloned()
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
        // Gone, or without a selector: its slices go (the garbage collector would too).
        let Some(svc) = svc.filter(|s| {
            s.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| !s.is_empty())
        }) else {
            for s in existing {
                let _ = api
                    .delete(
                        s.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::default(),
                    )
                    .await;
            }
            return Ok(());
        };
        // Endpoints grouped by the ports their pod resolves, 100 to a slice.
        let mut groups: BTreeMap<String, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
        let mut eps = selected_pods(&svc, &self.pods.store.state());
        eps.sort_by(|a, b| a.pod.metadata.name.cmp(&b.pod.metadata.name));
        for ep in eps {
            let ports = ports_for(&svc, &ep.pod);
            let node = ep
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty());
            let endpoint = Endpoint {
                addresses: vec![ep.ip.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some(ep.ready),
                    serving: Some(ep.serving),
                    terminating: Some(ep.terminating),
                }),
                zone: node.as_deref().and_then(|n| self.zone_of(n)),
                node_name: node,
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: ep.pod.metadata.namespace.clone(),
                    name: ep.pod.metadata.name.clone(),
                    uid: ep.pod.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let gk = serde_json::to_string(&ports).unwrap_or_default();
            groups
                .entry(gk)
                .or_insert_with(|| (ports, Vec::new()))
                .1
                .push(endpoint);
        }
        let family = if svc
            .spec
            .as_ref()
            .and_then(|s| s.ip_families.as_ref())
            .and_then(|f| f.first())
            .map(String::as_str)
            == Some("IPv6")
        {
            "IPv6"
        } else {
            "IPv4"
        };
        let mut desired: Vec<(Vec<EndpointPort>, Vec<Endpoint>)> = Vec::new();
        for (_, (ports, endpoints)) in groups {
            for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
                desired.push((ports.clone(), chunk.to_vec()));
            }
        }
        if desired.is_empty() {
            // A selector with no endpoints keeps one empty slice, as upstream.
            let ports = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .map(|_| Vec::new())
                .unwrap_or_default();
            desired.push((ports, Vec::new()));
        }
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        labels.insert(SERVICE_NAME_LABEL.into(), name.into());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            name: name.into(),
            uid: svc.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let desired = desired
            .into_iter()
            .map(|(ports, endpoints)| Desired {
                address_type: family.into(),
                ports,
                endpoints,
            })
            .collect();
        let target = Target {
            namespace: ns,
            generate_name: format!("{name}-"),
            labels,
            annotations: BTreeMap::new(),
            owner,
        };
        reconcile(&api, &existing, desired, &target).await
    }
}

impl Reconciler for EndpointSliceController {
    type Error = String;

    fn name(&self) -> &str {
        "endpointslice"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![
            self.services.clone(),
            self.pods.clone(),
            self.nodes.clone(),
            self.slices.clone(),
        ]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        EndpointSliceController::sync(self, key)
            .await
            .map(Action::from)
    }
}

/// One slice's wanted content.
pub struct Desired {
    pub address_type: String,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// What every slice of one owner carries.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub generate_name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: OwnerReference,
}

/// Upstream's slice reconciler (`k8s.io/endpointslice`), shared by the EndpointSlice
/// and mirroring controllers: existing slices are reused in order (of the same address
/// type) and rewritten only when their content or labels differ, missing ones created,
/// extra ones deleted.
pub async fn reconcile(
    api: &Api<EndpointSlice>,
    existing: &[Arc<EndpointSlice>],
    desired: Vec<Desired>,
    t: &Target<'_>,
) -> Result<(), String> {
    let mut unused: Vec<&Arc<EndpointSlice>> = existing.iter().collect();
    for d in desired {
        let slice = |meta: ObjectMeta| EndpointSlice {
            metadata: meta,
            address_type: d.address_type.clone(),
            endpoints: d.endpoints.clone(),
            ports: Some(d.ports.clone()),
        };
        let reuse = unused
            .iter()
            .position(|s| s.address_type == d.address_type)
            .map(|i| unused.remove(i));
        match reuse {
            Some(old) => {
                let annotations = (!t.annotations.is_empty()).then(|| t.annotations.clone());
                if old.endpoints == d.endpoints
                    && old.ports.clone().unwrap_or_default() == d.ports
                    && old.metadata.labels.as_ref() == Some(&t.labels)
                    && (annotations.is_none() || old.metadata.annotations == annotations)
                {
                    continue;
                }
                let mut meta = old.metadata.clone();
                meta.labels = Some(t.labels.clone());
                if annotations.is_some() {
                    meta.annotations = annotations;
                }
                api.replace(
                    meta.name.clone().unwrap_or_default().as_str(),
                    &PostParams::default(),
                    &slice(meta),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            None => {
                let meta = ObjectMeta {
                    generate_name: Some(t.generate_name.clone()),
                    namespace: Some(t.namespace.into()),
                    labels: Some(t.labels.clone()),
                    annotations: (!t.annotations.is_empty()).then(|| t.annotations.clone()),
                    owner_references: Some(vec![t.owner.clone()]),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &slice(meta))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for extra in unused {
        let _ = api
            .delete(
                extra.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;

    /// One sync: a managed slice of the selected pods that have an IP, with their
    /// readiness; none for a Service without a selector.
    #[tokio::test]
    async fn sync_writes_slices_of_selected_pods() {
        for (name, with_selector) in [("selector", true), ("no-selector", false)] {
            let env = Env::new(&format!("eps-{name}")).await;
            let (services, pods, nodes, slices) = (
                env.informer::<Service>(),
                env.informer::<Pod>(),
                env.cluster_informer::<Node>(),
                env.informer::<EndpointSlice>(),
            );
            let c = EndpointSliceController::new(
                env.client.clone(),
                services.clone(),
                pods.clone(),
                nodes.clone(),
                slices.clone(),
            );
            env.start().await;
            let (svc, web_pods) = env.web_service_and_pods(with_selector).await;
            env.cached(&pods, &web_pods.iter().collect::<Vec<_>>())
                .await;
            env.cached(&services, &[&svc]).await;
            nodes.synced().await;
            slices.synced().await;
            env.sync(c.as_ref(), &env.key("web")).await;

            let got = env.list::<EndpointSlice>().await;
            if !with_selector {
                assert!(got.is_empty(), "{name}: {got:?}");
                continue;
            }
            assert_eq!(got.len(), 1, "{name}");
            let labels = got[0].metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get(SERVICE_NAME_LABEL).map(String::as_str),
                Some("web")
            );
            assert_eq!(
                labels.get(MANAGED_BY_LABEL).map(String::as_str),
                Some("endpointslice-controller.k8s.io")
            );
            let mut eps: Vec<(String, Option<bool>)> = got[0]
                .endpoints
                .iter()
                .map(|e| {
                    (
                        e.addresses[0].clone(),
                        e.conditions.as_ref().and_then(|c| c.ready),
                    )
                })
                .collect();
            eps.sort();
            assert_eq!(
                eps,
                [
                    ("10.1.0.1".to_string(), Some(true)),
                    ("10.1.0.2".to_string(), Some(false))
                ],
                "{name}"
            );
            let ports = got[0].ports.clone().unwrap_or_default();
            assert_eq!(
                ports.iter().map(|p| p.port).collect::<Vec<_>>(),
                [Some(8080)]
            );
        }
    }
}
