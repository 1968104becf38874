//! The scheduler's view of pods and nodes (upstream `framework/types.go`): a pod's
//! effective requests, host ports and priority computed once, and per node the pods on
//! it and the sums the plugins check against allocatable.

use apimachinery::resource::Quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Requests (or allocatable) in the units the plugins compare: millicores, bytes, counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and the like, by name.
    pub scalar: BTreeMap<String, i64>,
}

/// Requests assumed for containers that state none (upstream `schedutil` defaults), so
/// that scoring spreads pods without requests.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

fn quantity(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<Quantity> {
    Quantity::parse(&q.0)
}

impl Resource {
    pub fn from_list(
        list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    ) -> Self {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            let Some(q) = quantity(q) else { continue };
            match name.as_str() {
                "cpu" => r.milli_cpu = q.milli_value(),
                "memory" => r.memory = q.value(),
                "ephemeral-storage" => r.ephemeral_storage = q.value(),
                "pods" => r.allowed_pod_number = q.value(),
                other if is_scalar(other) => {
                    r.scalar.insert(other.to_string(), q.value());
                }
                _ => {}
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each field the larger of the two.
    pub fn set_max(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }
}

/// Extended (`example.com/gpu`) and prefixed native resources, hugepages and attachable
/// volumes.
pub fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") || name.contains('/')
}

/// A container's requests, and the same with upstream's defaults for unset cpu/memory.
fn container_requests(c: &Container) -> (Resource, Resource) {
    let req = Resource::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let mut non_zero = req.clone();
    let has = |n: &str| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|m| m.contains_key(n))
    };
    if !has("cpu") {
        non_zero.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !has("memory") {
        non_zero.memory = DEFAULT_MEMORY_REQUEST;
    }
    (req, non_zero)
}

/// A pod's effective requests (upstream `resource.PodRequests`): containers plus running
/// sidecars (restartable init containers), or the largest init container with the
/// sidecars started before it, whichever is larger; then the pod overhead. Pod-level
/// `spec.resources.requests` take the place of the containers' sums where set.
pub fn pod_requests(pod: &Pod) -> (Resource, Resource) {
    let Some(spec) = &pod.spec else {
        return Default::default();
    };
    let mut sum = (Resource::default(), Resource::default());
    for c in &spec.containers {
        let (r, n) = container_requests(c);
        sum.0.add(&r);
        sum.1.add(&n);
    }
    let mut sidecars = (Resource::default(), Resource::default());
    let mut max_init = (Resource::default(), Resource::default());
    for c in spec.init_containers.iter().flatten() {
        let (r, n) = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.0.add(&r);
            sidecars.1.add(&n);
            max_init.0.set_max(&sidecars.0);
            max_init.1.set_max(&sidecars.1);
        } else {
            let (mut r2, mut n2) = (r, n);
            r2.add(&sidecars.0);
            n2.add(&sidecars.1);
            max_init.0.set_max(&r2);
            max_init.1.set_max(&n2);
        }
    }
    sum.0.add(&sidecars.0);
    sum.1.add(&sidecars.1);
    sum.0.set_max(&max_init.0);
    sum.1.set_max(&max_init.1);
    if let Some(level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let pod_level = Resource::from_list(Some(level));
        for (name, field) in [("cpu", 0), ("memory", 1)] {
            if level.contains_key(name) {
                let v = pod_level.get(name);
                for r in [&mut sum.0, &mut sum.1] {
                    if field == 0 {
                        r.milli_cpu = v;
                    } else {
                        r.memory = v;
                    }
                }
            }
        }
    }
    if let Some(overhead) = &spec.overhead {
        let o = Resource::from_list(Some(overhead));
        sum.0.add(&o);
        sum.1.add(&o);
    }
    sum
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// Two bindings clash on the same protocol and port when either IP is the wildcard.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.protocol == o.protocol
            && self.port == o.port
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

/// A pod as the scheduler sees it, derived once per pod version.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub priority: i32,
    /// Whether the pod has any pod (anti-)affinity, and required anti-affinity, so
    /// InterPodAffinity can skip the others.
    pub has_affinity: bool,
    pub has_required_anti_affinity: bool,
    /// Parsed pod (anti-)affinity terms.
    pub affinity: crate::framework::plugins::interpodaffinity::Terms,
    /// Container images as nodes report them (`nginx` -> `nginx:latest`), for ImageLocality.
    pub images: Vec<String>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Arc<Self> {
        let (requests, non_zero_requests) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let host_ports = spec
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port: p.host_port.unwrap_or(0),
            })
            .collect();
        let m = &pod.metadata;
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let has_affinity =
            affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
        let has_required_anti_affinity = affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|t| !t.is_empty());
        let images = spec
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .map(|c| {
                crate::framework::plugins::imagelocality::normalized_image_name(
                    c.image.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        let terms = crate::framework::plugins::interpodaffinity::Terms::of(&pod);
        Arc::new(PodInfo {
            affinity: terms,
            images,
            has_affinity,
            has_required_anti_affinity,
            key: format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default()
            ),
            uid: m.uid.clone().unwrap_or_default(),
            requests,
            non_zero_requests,
            host_ports,
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            pod,
        })
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }
}

/// One node and what is placed on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub node: Option<Arc<Node>>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resource,
    /// Requests with defaults for containers that state none (for scoring).
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    pub used_ports: Vec<HostPort>,
    /// Image name -> size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// How many of its pods have pod (anti-)affinity terms.
    pub pods_with_affinity: usize,
}

impl NodeInfo {
    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(status.and_then(|s| s.allocatable.as_ref()));
        self.images = status
            .into_iter()
            .flat_map(|s| s.images.iter().flatten())
            .flat_map(|i| {
                let size = i.size_bytes.unwrap_or(0);
                i.names.iter().flatten().map(move |n| (n.clone(), size))
            })
            .collect();
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.pods_with_affinity += usize::from(p.has_affinity);
        self.requested.add(&p.requests);
        self.non_zero_requested.add(&p.non_zero_requests);
        self.used_ports.extend(p.host_ports.iter().cloned());
        self.pods.push(p);
    }

    /// Removes the pod with this uid; false when it was not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let p = self.pods.swap_remove(i);
        self.pods_with_affinity -= usize::from(p.has_affinity);
        self.requested.sub(&p.requests);
        self.non_zero_requested.sub(&p.non_zero_requests);
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        true
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn effective_requests_with_init_and_sidecars() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [
                {"name": "side", "image": "i", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "init", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}
            ],
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "500m", "memory": "100Mi"}}}],
            "overhead": {"cpu": "10m"}}}));
        let (req, non_zero) = pod_requests(&p);
        // max(500m + 200m sidecar, 2 init + 200m sidecar) + 10m overhead
        assert_eq!(req.milli_cpu, 2210);
        assert_eq!(req.memory, 1 << 30);
        // the sidecar states no memory: 200Mi by default next to the others
        assert_eq!(non_zero.memory, (1 << 30) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn no_requests_get_defaults_for_scoring() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        let (req, non_zero) = pod_requests(&p);
        assert!(req.is_zero());
        assert_eq!(
            (non_zero.milli_cpu, non_zero.memory),
            (100, DEFAULT_MEMORY_REQUEST)
        );
    }
}
