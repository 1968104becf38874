//! The built-in resources this apiserver serves (upstream's `RESTStorageProvider`s of
//! `pkg/controlplane/apiserver` and `pkg/registry/*/rest`): one strategy per stored
//! resource, the subresources each one carries, and the versions served from another
//! version's storage.

use apiserver::endpoints::view::VersionView;
use apiserver::endpoints::{ConnectHandler, SubresourceHandler};
use apiserver::registry::generic::Registry;
use apiserver::registry::strategy::{ResourceInfo, Strategy};
use registry::core::service::Allocators;
use std::collections::HashMap;
use std::sync::Arc;

/// Groups in upstream's discovery order (core first).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
];

/// The local APIServices' priorities (upstream kube-apiserver's `apiVersionPriorities`):
/// discovery orders groups by the first number and versions within a group by the
/// second.
pub const API_VERSION_PRIORITIES: &[kube_aggregator::autoregister::Priority] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v2", 17500, 30),
    ("autoscaling", "v1", 17500, 15),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
    ("resource.k8s.io", "v1", 15900, 15),
];

/// Every stored built-in resource.
pub fn strategies(allocators: Arc<Allocators>) -> Vec<Arc<dyn Strategy>> {
    use registry::*;
    vec![
        // core/v1
        Arc::new(core::namespace::strategy()),
        Arc::new(core::pod::strategy()),
        Arc::new(core::node::strategy()),
        Arc::new(core::service::strategy(allocators)),
        Arc::new(core::endpoints::strategy()),
        Arc::new(core::configmap::strategy()),
        Arc::new(core::secret::strategy()),
        Arc::new(core::serviceaccount::strategy()),
        Arc::new(core::event::strategy()),
        Arc::new(core::limitrange::strategy()),
        Arc::new(core::resourcequota::strategy()),
        Arc::new(core::persistentvolume::strategy()),
        Arc::new(core::persistentvolumeclaim::strategy()),
        Arc::new(core::replicationcontroller::strategy()),
        Arc::new(core::podtemplate::strategy()),
        // apps/v1
        Arc::new(apps::deployment::strategy()),
        Arc::new(apps::replicaset::strategy()),
        Arc::new(apps::statefulset::strategy()),
        Arc::new(apps::daemonset::strategy()),
        Arc::new(apps::controllerrevision::strategy()),
        // autoscaling/v2 (v1 is a view), batch/v1, policy/v1
        Arc::new(autoscaling::horizontalpodautoscaler::strategy()),
        Arc::new(batch::job::strategy()),
        Arc::new(batch::cronjob::strategy()),
        Arc::new(policy::poddisruptionbudget::strategy()),
        // networking.k8s.io/v1, discovery.k8s.io/v1
        Arc::new(networking::networkpolicy::strategy()),
        Arc::new(networking::ingress::strategy()),
        Arc::new(networking::ingressclass::strategy()),
        Arc::new(networking::ipaddress::strategy()),
        Arc::new(networking::servicecidr::strategy()),
        Arc::new(discovery::endpointslice::strategy()),
        // scheduling, node, storage, certificates, rbac, coordination
        Arc::new(scheduling::priorityclass::strategy()),
        Arc::new(node::runtimeclass::strategy()),
        Arc::new(storage::storageclass::strategy()),
        Arc::new(storage::csidriver::strategy()),
        Arc::new(storage::csinode::strategy()),
        Arc::new(storage::volumeattachment::strategy()),
        Arc::new(storage::csistoragecapacity::strategy()),
        Arc::new(storage::volumeattributesclass::strategy()),
        Arc::new(certificates::certificatesigningrequest::strategy()),
        Arc::new(rbac::role::role()),
        Arc::new(rbac::role::cluster_role()),
        Arc::new(rbac::binding::role_binding()),
        Arc::new(rbac::binding::cluster_role_binding()),
        Arc::new(coordination::lease::strategy()),
        Arc::new(apiextensions::customresourcedefinition::strategy()),
        Arc::new(apiregistration::apiservice::strategy()),
        // admissionregistration.k8s.io/v1, flowcontrol.apiserver.k8s.io/v1
        Arc::new(admissionregistration::webhook::mutating()),
        Arc::new(admissionregistration::webhook::validating()),
        Arc::new(admissionregistration::policy::policy()),
        Arc::new(admissionregistration::policy::binding()),
        Arc::new(flowcontrol::flowschema::strategy()),
        Arc::new(flowcontrol::prioritylevel::strategy()),
        // resource.k8s.io/v1 (DRA objects; allocation is not built)
        Arc::new(resource::deviceclass::strategy()),
        Arc::new(resource::resourceclaim::claim()),
        Arc::new(resource::resourceclaim::template()),
        Arc::new(resource::resourceslice::strategy()),
    ]
}

/// The handler of a resource's subresource other than `status` (served generically).
pub fn subresource(
    resource: &str,
    sub: &str,
    reg: &Arc<Registry>,
    all: &HashMap<String, Arc<Registry>>,
    issuer: &Arc<apiserver::authentication::serviceaccount::TokenIssuer>,
) -> Option<Arc<dyn SubresourceHandler>> {
    use registry::core::pod::subresources::{PodPart, PodSubresource};
    let registry = reg.clone();
    Some(match (resource, sub) {
        ("pods", "binding") => Arc::new(registry::core::pod::Binding { registry }),
        ("pods", "eviction") => Arc::new(registry::core::pod::eviction::Eviction {
            pods: registry,
            budgets: all.get("poddisruptionbudgets")?.clone(),
        }),
        ("pods", "ephemeralcontainers") => Arc::new(PodSubresource {
            registry,
            part: PodPart::EphemeralContainers,
        }),
        ("pods", "resize") => Arc::new(PodSubresource {
            registry,
            part: PodPart::Resize,
        }),
        ("serviceaccounts", "token") => Arc::new(registry::core::serviceaccount::TokenRequest {
            serviceaccounts: registry,
            pods: all.get("pods")?.clone(),
            secrets: all.get("secrets")?.clone(),
            nodes: all.get("nodes")?.clone(),
            issuer: issuer.clone(),
        }),
        ("namespaces", "finalize") => Arc::new(registry::core::namespace::Finalize { registry }),
        ("certificatesigningrequests", "approval") => {
            Arc::new(registry::certificates::certificatesigningrequest::Approval { registry })
        }
        (_, "scale") => Arc::new(apiserver::registry::scale::ScaleHandler::workload(registry)),
        _ => return None,
    })
}

/// The streaming subresources (log, exec, attach, portforward, proxy).
pub fn connect(
    resource: &str,
    sub: &str,
    reg: &Arc<Registry>,
    all: &HashMap<String, Arc<Registry>>,
    client: &Arc<registry::core::pod::connect::KubeletClient>,
) -> Option<Arc<dyn ConnectHandler>> {
    use registry::core::pod::connect::{Kind, KubeletConnect, Proxy, ProxyTo};
    let kubelet = |kind| -> Option<Arc<dyn ConnectHandler>> {
        Some(Arc::new(KubeletConnect {
            pods: reg.clone(),
            nodes: all.get("nodes")?.clone(),
            kind,
            kubelet: client.clone(),
        }))
    };
    let proxy = |to| -> Option<Arc<dyn ConnectHandler>> {
        Some(Arc::new(Proxy {
            registry: reg.clone(),
            to,
            kubelet: client.clone(),
        }))
    };
    match (resource, sub) {
        ("pods", "log") => kubelet(Kind::Log),
        ("pods", "exec") => kubelet(Kind::Exec),
        ("pods", "attach") => kubelet(Kind::Attach),
        ("pods", "portforward") => kubelet(Kind::PortForward),
        ("pods", "proxy") => proxy(ProxyTo::Pod),
        ("nodes", "proxy") => proxy(ProxyTo::Node),
        ("services", "proxy") => proxy(ProxyTo::Service {
            endpoints: all.get("endpoints")?.clone(),
        }),
        _ => None,
    }
}

/// Versions served from another resource's storage: (stored resource plural, view).
pub fn views(stored: &dyn Fn(&str) -> ResourceInfo) -> Vec<(&'static str, Arc<dyn VersionView>)> {
    vec![
        (
            "events",
            Arc::new(registry::events::event::EventsView::new(&stored("events"))),
        ),
        (
            "horizontalpodautoscalers",
            Arc::new(registry::autoscaling::horizontalpodautoscaler::V1View::new(
                &stored("horizontalpodautoscalers"),
            )),
        ),
    ]
}
