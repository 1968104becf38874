//! What the proxiers program (upstream `pkg/proxy/serviceport.go`, `endpoint.go`,
//! `topology.go`): one entry per Service port with its cluster IPs, NodePort, external
//! IPs, affinity and traffic policies, and the endpoints of that port from the Service's
//! EndpointSlices — ready ones, or serving-and-terminating ones when none is ready.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    /// `namespace/name:portname` (upstream's ServicePortName).
    pub name: String,
    pub protocol: String,
    pub cluster_ips: Vec<String>,
    pub port: i32,
    pub node_port: i32,
    pub external_ips: Vec<String>,
    pub load_balancer_ips: Vec<String>,
    /// ClientIP affinity timeout.
    pub affinity_seconds: Option<i32>,
    pub internal_local: bool,
    pub external_local: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub ip: String,
    pub port: i32,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
}

impl Endpoint {
    pub fn addr(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

/// Every service port with its endpoints, sorted by name.
pub type ServiceMap = BTreeMap<String, (ServicePort, Vec<Endpoint>)>;

pub fn service_ports(svc: &Service) -> Vec<ServicePort> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ips: Vec<String> = spec
        .cluster_ips
        .clone()
        .or_else(|| spec.cluster_ip.clone().map(|c| vec![c]))
        .unwrap_or_default()
        .into_iter()
        .filter(|ip| !ip.is_empty() && ip != "None" && !ip.contains(':'))
        .collect();
    // Headless services are DNS only.
    if cluster_ips.is_empty() {
        return Vec::new();
    }
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref()?.timeout_seconds)
            .unwrap_or(10800)
    });
    let lb_ips: Vec<String> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref()?.ingress.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect();
    spec.ports
        .iter()
        .flatten()
        .map(|p| ServicePort {
            name: match p.name.as_deref() {
                Some(pn) if !pn.is_empty() => format!("{ns}/{name}:{pn}"),
                _ => format!("{ns}/{name}"),
            },
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            cluster_ips: cluster_ips.clone(),
            port: p.port,
            node_port: p.node_port.unwrap_or(0),
            external_ips: spec.external_ips.clone().unwrap_or_default(),
            load_balancer_ips: lb_ips.clone(),
            affinity_seconds: affinity,
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
        })
        .collect()
}

/// The endpoints of one service port from its slices (port matched by name).
pub fn endpoints_for(
    port: &ServicePort,
    port_name: &str,
    slices: &[&EndpointSlice],
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for s in slices {
        if s.address_type != "IPv4" {
            continue;
        }
        let Some(sp) = s.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && p.protocol.as_deref().unwrap_or("TCP") == port.protocol
        }) else {
            continue;
        };
        let Some(n) = sp.port else { continue };
        for e in &s.endpoints {
            let Some(ip) = e.addresses.first() else {
                continue;
            };
            let c = e.conditions.clone().unwrap_or_default();
            let ready = c.ready.unwrap_or(true);
            let ep = Endpoint {
                ip: ip.clone(),
                port: n,
                ready,
                serving: c.serving.unwrap_or(ready),
                terminating: c.terminating.unwrap_or(false),
                node: e.node_name.clone(),
            };
            if !out.contains(&ep) {
                out.push(ep);
            }
        }
    }
    out.sort_by_key(|e| e.addr());
    out
}

/// The endpoints traffic goes to: the ready ones, or (upstream's terminating fallback)
/// serving-and-terminating ones when none is ready; restricted to this node's for a
/// Local policy.
pub fn usable<'a>(eps: &'a [Endpoint], local_only: Option<&str>) -> Vec<&'a Endpoint> {
    let scoped: Vec<&Endpoint> = eps
        .iter()
        .filter(|e| local_only.is_none_or(|n| e.node.as_deref() == Some(n)))
        .collect();
    let ready: Vec<&Endpoint> = scoped.iter().copied().filter(|e| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    scoped
        .into_iter()
        .filter(|e| e.serving && e.terminating)
        .collect()
}

/// Builds the whole map from the informers' contents.
pub fn build(
    services: &[std::sync::Arc<Service>],
    slices: &[std::sync::Arc<EndpointSlice>],
) -> ServiceMap {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        if let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        {
            by_service
                .entry((
                    s.metadata.namespace.clone().unwrap_or_default(),
                    svc.clone(),
                ))
                .or_default()
                .push(s);
        }
    }
    let mut map = ServiceMap::new();
    for svc in services {
        let key = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let slices = by_service.get(&key).cloned().unwrap_or_default();
        for sp in service_ports(svc) {
            let port_name = sp
                .name
                .rsplit_once(':')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default();
            let eps = endpoints_for(&sp, &port_name, &slices);
            map.insert(format!("{}/{}", sp.name, sp.protocol), (sp, eps));
        }
    }
    map
}
