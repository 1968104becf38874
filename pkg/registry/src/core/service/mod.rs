//! Services (upstream `pkg/registry/core/service`): defaults, validation, ClusterIP and
//! NodePort allocation on create/update, release on delete.

pub mod ipallocator;
pub mod portallocator;

use crate::typed::{Lifecycle, Typed, info};
use apimachinery::{Cause, StatusError};
use async_trait::async_trait;
use ipallocator::IpAllocator;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use portallocator::PortAllocator;
use serde_json::{Value, json};
use std::sync::Arc;

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort") | Some("LoadBalancer")
    ) && !(svc["spec"]["type"] == "LoadBalancer"
        && svc["spec"]["allocateLoadBalancerNodePorts"] == false)
}

fn needs_cluster_ip(svc: &Value) -> bool {
    svc["spec"]["type"] != "ExternalName" && svc["spec"]["clusterIP"] != "None"
}

pub struct Allocators {
    pub ips: IpAllocator,
    pub ports: PortAllocator,
}

impl Allocators {
    fn name(svc: &Value) -> String {
        svc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn allocate_node_ports(
        &self,
        svc: &mut Value,
        keep: &[u16],
    ) -> Result<Vec<u16>, StatusError> {
        let mut got = Vec::new();
        let name = Self::name(svc);
        let n = svc["spec"]["ports"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0);
        for i in 0..n {
            let requested = svc["spec"]["ports"][i]["nodePort"]
                .as_u64()
                .filter(|p| *p > 0)
                .map(|p| p as u16);
            if requested.is_some_and(|p| keep.contains(&p)) {
                continue;
            }
            match self
                .ports
                .allocate(requested, &name, &format!("spec.ports[{i}].nodePort"))
                .await
            {
                Ok(p) => {
                    svc["spec"]["ports"][i]["nodePort"] = json!(p);
                    got.push(p);
                }
                Err(e) => {
                    for p in got {
                        self.ports.release(p).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(got)
    }
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter(|p| *p > 0)
        .map(|p| p as u16)
        .collect()
}

#[async_trait]
impl Lifecycle for Allocators {
    async fn before_create(&self, svc: &mut Value) -> Result<(), StatusError> {
        if svc["spec"]["type"] != "ExternalName" {
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
        let mut ip = None;
        if needs_cluster_ip(svc) {
            let requested = svc["spec"]["clusterIP"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from);
            let got = self.ips.allocate(requested.as_deref(), svc).await?;
            svc["spec"]["clusterIP"] = json!(got);
            svc["spec"]["clusterIPs"] = json!([got]);
            ip = Some(got);
        } else if svc["spec"]["clusterIP"] == "None" {
            svc["spec"]["clusterIPs"] = json!(["None"]);
        }
        if needs_node_ports(svc)
            && let Err(e) = self.allocate_node_ports(svc, &[]).await
        {
            if let Some(ip) = ip {
                self.ips.release(&ip).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn create_failed(&self, svc: &Value) {
        self.after_delete(svc).await
    }

    async fn before_update(&self, new: &mut Value, old: &Value) -> Result<(), StatusError> {
        // A type change that needs a cluster IP now (from ExternalName) allocates one; one
        // that no longer does (to ExternalName) releases the old one.
        let old_ip = old["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .map(String::from);
        let mut allocated = None;
        if needs_cluster_ip(new) && old_ip.is_none() {
            let requested = new["spec"]["clusterIP"]
                .as_str()
                .filter(|ip| !ip.is_empty())
                .map(String::from);
            let got = self.ips.allocate(requested.as_deref(), new).await?;
            new["spec"]["clusterIP"] = json!(got);
            new["spec"]["clusterIPs"] = json!([got]);
            new["spec"]["ipFamilies"] = json!(["IPv4"]);
            new["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            allocated = Some(got);
        }
        let old_ports = node_ports(old);
        if !needs_node_ports(new)
            && let Some(ps) = new["spec"]["ports"].as_array_mut()
        {
            for p in ps {
                p.as_object_mut().map(|m| m.remove("nodePort"));
            }
        }
        if needs_node_ports(new)
            && let Err(e) = self.allocate_node_ports(new, &old_ports).await
        {
            if let Some(ip) = allocated {
                self.ips.release(&ip).await;
            }
            return Err(e);
        }
        let kept = node_ports(new);
        for p in old_ports.into_iter().filter(|p| !kept.contains(p)) {
            self.ports.release(p).await;
        }
        if let Some(ip) = old_ip.filter(|ip| new["spec"]["clusterIP"].as_str() != Some(ip)) {
            self.ips.release(&ip).await;
        }
        Ok(())
    }

    async fn after_delete(&self, svc: &Value) {
        if let Some(ip) = svc["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        {
            self.ips.release(ip).await;
        }
        for p in node_ports(svc) {
            self.ports.release(p).await;
        }
    }
}

fn default_service(s: &mut Service) {
    let Some(spec) = s.spec.as_mut() else { return };
    let t = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    if t != "ExternalName" {
        spec.session_affinity.get_or_insert_with(|| "None".into());
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
    if spec.session_affinity.as_deref() == Some("None") {
        spec.session_affinity_config = None;
    }
    // Upstream `service.ExternallyAccessible`.
    let external_ips = spec.external_ips.as_ref().is_some_and(|e| !e.is_empty());
    if t == "NodePort" || t == "LoadBalancer" || (t == "ClusterIP" && external_ips) {
        let etp = spec.external_traffic_policy.get_or_insert_with(String::new);
        if etp.is_empty() {
            *etp = "Cluster".into();
        }
    }
    if t == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
        let ingress = s.status.as_mut().and_then(|st| st.load_balancer.as_mut());
        for i in ingress
            .and_then(|lb| lb.ingress.as_mut())
            .into_iter()
            .flatten()
        {
            if i.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && i.ip_mode.is_none() {
                i.ip_mode = Some("VIP".into());
            }
        }
    }
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let cfg = spec
            .session_affinity_config
            .get_or_insert_with(Default::default);
        let cip = cfg.client_ip.get_or_insert_with(Default::default);
        cip.timeout_seconds.get_or_insert(10800);
    }
    for p in spec.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
        if p.target_port.is_none()
            || p.target_port == Some(IntOrString::Int(0))
            || p.target_port == Some(IntOrString::String(String::new()))
        {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
}

fn validate_service(s: &Service) -> Vec<Cause> {
    let mut c = Vec::new();
    let Some(spec) = &s.spec else {
        return vec![Cause::required("spec", "")];
    };
    let t = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !matches!(
        t,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        c.push(Cause::not_supported(
            "spec.type",
            &json!(t),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if ports.is_empty() && t != "ExternalName" && !headless {
        c.push(Cause::required("spec.ports", ""));
    }
    if t == "ExternalName" && spec.external_name.as_deref().unwrap_or_default().is_empty() {
        c.push(Cause::required("spec.externalName", ""));
    }
    if headless && matches!(t, "NodePort" | "LoadBalancer") {
        c.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &json!("None"),
            &format!("may not be set to 'None' for {t} services"),
        ));
    }
    let mut seen_names = Vec::new();
    let mut seen = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let name = p.name.clone().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            c.push(Cause::required(&format!("spec.ports[{i}].name"), ""));
        } else if !name.is_empty() {
            for e in apimachinery::validation::dns1123_label(&name) {
                c.push(Cause::invalid(
                    &format!("spec.ports[{i}].name"),
                    &json!(name),
                    &e,
                ));
            }
            if seen_names.contains(&name) {
                c.push(Cause::duplicate(
                    &format!("spec.ports[{i}].name"),
                    &json!(name),
                ));
            }
            seen_names.push(name);
        }
        if !(1..=65535).contains(&p.port) {
            c.push(Cause::invalid(
                &format!("spec.ports[{i}].port"),
                &json!(p.port),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
            c.push(Cause::not_supported(
                &format!("spec.ports[{i}].protocol"),
                &json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if seen.contains(&(p.port, proto.clone())) {
            c.push(Cause::duplicate(
                &format!("spec.ports[{i}]"),
                &json!({"port": p.port, "protocol": proto}),
            ));
        }
        seen.push((p.port, proto));
        if let Some(IntOrString::Int(tp)) = &p.target_port
            && !(1..=65535).contains(tp)
        {
            c.push(Cause::invalid(
                &format!("spec.ports[{i}].targetPort"),
                &json!(tp),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if t == "ClusterIP" && p.node_port.unwrap_or(0) != 0 {
            c.push(Cause::forbidden(
                &format!("spec.ports[{i}].nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
    }
    if let Some(a) = &spec.session_affinity
        && !matches!(a.as_str(), "ClientIP" | "None")
    {
        c.push(Cause::not_supported(
            "spec.sessionAffinity",
            &json!(a),
            &["ClientIP", "None"],
        ));
    }
    c
}

fn validate_service_update(new: &Service, old: &Service) -> Vec<Cause> {
    let (Some(n), Some(o)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let old_ip = o.cluster_ip.clone().unwrap_or_default();
    let new_ip = n.cluster_ip.clone().unwrap_or_default();
    let to_external = n.type_.as_deref() == Some("ExternalName");
    if !old_ip.is_empty() && new_ip != old_ip && !to_external {
        return vec![Cause::invalid(
            "spec.clusterIPs[0]",
            &json!(new_ip),
            "may not change once set",
        )];
    }
    Vec::new()
}

/// Keeps allocated values a PUT omitted (upstream `patchAllocatedValues`).
fn prepare_for_update(new: &mut Value, old: &Value) {
    let spec = &mut new["spec"];
    if spec["clusterIP"].as_str().unwrap_or_default().is_empty() && spec["type"] != "ExternalName" {
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if !old["spec"][k].is_null() {
                spec[k] = old["spec"][k].clone();
            }
        }
    }
    // Upstream's dropTypeDependentFields: a Service that no longer needs a cluster IP
    // (now ExternalName) drops the IPs and families the update merely carried over; the
    // IP is released in `before_update`.
    if needs_cluster_ip(old) && !needs_cluster_ip(new) && new["spec"]["clusterIP"] != "None" {
        let spec = &mut new["spec"];
        for group in [
            &["clusterIP", "clusterIPs"][..],
            &["ipFamilies"],
            &["ipFamilyPolicy"],
        ] {
            if group.iter().all(|k| spec[*k] == old["spec"][*k])
                && let Some(m) = spec.as_object_mut()
            {
                for k in group {
                    m.remove(*k);
                }
            }
        }
    }
    // Leaving NodePort/LoadBalancer drops the node ports the update merely carried over.
    if needs_node_ports(old) && !needs_node_ports(new) {
        let old_ports = node_ports(old);
        for p in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
            if p["nodePort"]
                .as_u64()
                .is_some_and(|n| old_ports.contains(&(n as u16)))
            {
                p.as_object_mut().map(|m| m.remove("nodePort"));
            }
        }
    }
    if needs_node_ports(new) {
        let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        for p in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
            if p["nodePort"].as_u64().unwrap_or(0) == 0
                && let Some(o) = old_ports
                    .iter()
                    .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"])
                && !o["nodePort"].is_null()
            {
                p["nodePort"] = o["nodePort"].clone();
            }
        }
    }
}

fn ports_cell(o: &Value) -> String {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_u64().filter(|n| *n > 0) {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn external_ip_cell(o: &Value) -> String {
    let spec = &o["spec"];
    let external: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ExternalName" => spec["externalName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(String::from)
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ if !external.is_empty() => external.join(","),
        _ => "<none>".into(),
    }
}

pub fn strategy(alloc: Arc<Allocators>) -> Typed<Service> {
    let mut i = info("", "v1", "Service", "services", true, "services/specs");
    i.short_names = vec!["svc".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["proxy".into(), "status".into()];
    let mut t = Typed::new(i);
    t.name_rule = apimachinery::validation::dns1035_label;
    t.return_deleted_object = true;
    t.default = default_service;
    t.validate = validate_service;
    t.validate_update = validate_service_update;
    t.prepare_for_update = prepare_for_update;
    t.prepare_for_create = |o| {
        o.as_object_mut().map(|m| m.remove("status"));
        o["status"] = json!({"loadBalancer": {}});
    };
    t.fields = |o| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        [
            ("spec.clusterIP".to_string(), s(&o["spec"]["clusterIP"])),
            ("spec.type".to_string(), s(&o["spec"]["type"])),
        ]
        .into_iter()
        .collect()
    };
    t.supported_fields = &["spec.clusterIP", "spec.type"];
    t.columns = Some(|| {
        vec![
            crate::typed::col(
                "Type",
                "string",
                "type determines how the Service is exposed.",
                0,
            ),
            crate::typed::col(
                "Cluster-IP",
                "string",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
                0,
            ),
            crate::typed::col(
                "External-IP",
                "string",
                "List of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                0,
            ),
            crate::typed::col(
                "Port(s)",
                "string",
                "The list of ports that are exposed by this service.",
                0,
            ),
            crate::typed::col("Age", "string", "", 0),
            crate::typed::col(
                "Selector",
                "string",
                "Route service traffic to pods with label keys and values matching this selector.",
                1,
            ),
        ]
    });
    t.row = |o| {
        let ip = o["spec"]["clusterIP"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>");
        let sel: Vec<String> = o["spec"]["selector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        vec![
            o["spec"]["type"].clone(),
            json!(ip),
            json!(external_ip_cell(o)),
            json!(ports_cell(o)),
            crate::typed::age_cell(o),
            json!(if sel.is_empty() {
                "<none>".to_string()
            } else {
                sel.join(",")
            }),
        ]
    };
    t.lifecycle = Some(alloc);
    t
}
