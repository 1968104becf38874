//! Ingress, Endpoints and EndpointSlice describers. Upstream twin:
//! `kubectl/pkg/describe/describe.go` (`describeIngressV1`, `describeEndpoints`,
//! `describeEndpointSliceV1`).

use super::{
    PrefixWriter, annotations_multiline, describe_events, labels_multiline, name_namespace, s,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// What an Ingress's backends lead to: each named Service (or why it could not be read)
/// and its EndpointSlices.
pub type Backends = BTreeMap<String, Result<(Value, Vec<Value>), String>>;

/// The Services an Ingress names, default backend first.
pub fn backend_services(ing: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |b: &Value| {
        if let Some(n) = b["service"]["name"].as_str() {
            out.push(n.to_string());
        }
    };
    add(&ing["spec"]["defaultBackend"]);
    for r in ing["spec"]["rules"].as_array().into_iter().flatten() {
        for p in r["http"]["paths"].as_array().into_iter().flatten() {
            add(&p["backend"]);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn describe_backend(b: &Value, backends: &Backends) -> String {
    let svc = &b["service"];
    if svc.is_object() {
        let port = &svc["port"];
        let port_text = match port["number"].as_i64().filter(|n| *n != 0) {
            Some(n) => n.to_string(),
            None => s(&port["name"]).to_string(),
        };
        let name = s(&svc["name"]);
        let sb = format!("{name}:{port_text}");
        return match backends.get(name) {
            Some(Ok((service, slices))) => {
                let mut port_name = "";
                for sp in service["spec"]["ports"].as_array().into_iter().flatten() {
                    let number = port["number"].as_i64().unwrap_or(0);
                    if (number != 0 && sp["port"].as_i64() == Some(number))
                        || (!s(&port["name"]).is_empty() && sp["name"] == port["name"])
                    {
                        port_name = s(&sp["name"]);
                    }
                }
                format!(
                    "{sb} ({})",
                    super::kinds::format_endpoint_slices(slices, port_name)
                )
            }
            Some(Err(e)) => format!("{sb} (<error: {e}>)"),
            None => sb,
        };
    }
    let r = &b["resource"];
    if r.is_object() {
        let group = r["apiGroup"].as_str().unwrap_or("<none>");
        return format!(
            "APIGroup: {group}, Kind: {}, Name: {}",
            s(&r["kind"]),
            s(&r["name"])
        );
    }
    String::new()
}

pub fn ingress(w: &mut PrefixWriter, ing: &Value, backends: &Backends, events: Option<&[Value]>) {
    let meta = &ing["metadata"];
    let spec = &ing["spec"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    labels_multiline(w, "Labels", &meta["labels"]);
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    let mut addresses: Vec<&str> = ing["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i["ip"]
                .as_str()
                .filter(|x| !x.is_empty())
                .or(i["hostname"].as_str().filter(|x| !x.is_empty()))
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    w.write(0, &format!("Address:\t{}\n", addresses.join(",")));
    w.write(
        0,
        &format!(
            "Ingress Class:\t{}\n",
            spec["ingressClassName"].as_str().unwrap_or("<none>")
        ),
    );
    let default = if spec["defaultBackend"].is_object() {
        describe_backend(&spec["defaultBackend"], backends)
    } else {
        "<default>".to_string()
    };
    w.write(0, &format!("Default backend:\t{default}\n"));
    if let Some(tls) = spec["tls"].as_array().filter(|t| !t.is_empty()) {
        w.write(0, "TLS:\n");
        for t in tls {
            let hosts: Vec<&str> = t["hosts"].as_array().into_iter().flatten().map(s).collect();
            match t["secretName"].as_str().filter(|n| !n.is_empty()) {
                None => w.write(1, &format!("SNI routes {}\n", hosts.join(","))),
                Some(secret) => w.write(1, &format!("{secret} terminates {}\n", hosts.join(","))),
            }
        }
    }
    w.write(0, "Rules:\n  Host\tPath\tBackends\n");
    w.write(1, "----\t----\t--------\n");
    let mut count = 0;
    for rule in spec["rules"].as_array().into_iter().flatten() {
        if !rule["http"].is_object() {
            continue;
        }
        count += 1;
        let host = rule["host"]
            .as_str()
            .filter(|h| !h.is_empty())
            .unwrap_or("*");
        w.write(1, &format!("{host}\t\n"));
        for p in rule["http"]["paths"].as_array().into_iter().flatten() {
            w.write(
                2,
                &format!(
                    "\t{} \t{}\n",
                    s(&p["path"]),
                    describe_backend(&p["backend"], backends)
                ),
            );
        }
    }
    if count == 0 {
        w.write(1, &format!("*\t*\t{default}\n"));
    }
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

pub fn endpoints(w: &mut PrefixWriter, ep: &Value, events: Option<&[Value]>) {
    let meta = &ep["metadata"];
    name_namespace(w, ep);
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    w.write(0, "Subsets:\n");
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let ips = |k: &str| {
            let list: Vec<&str> = subset[k]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| s(&a["ip"]))
                .collect();
            if list.is_empty() {
                "<none>".to_string()
            } else {
                list.join(",")
            }
        };
        w.write(1, &format!("Addresses:\t{}\n", ips("addresses")));
        w.write(
            1,
            &format!("NotReadyAddresses:\t{}\n", ips("notReadyAddresses")),
        );
        if let Some(ports) = subset["ports"].as_array().filter(|p| !p.is_empty()) {
            w.write(1, "Ports:\n");
            w.write(2, "Name\tPort\tProtocol\n");
            w.write(2, "----\t----\t--------\n");
            for p in ports {
                let name = p["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("<unset>");
                w.write(
                    2,
                    &format!(
                        "{name}\t{}\t{}\n",
                        p["port"].as_i64().unwrap_or(0),
                        s(&p["protocol"])
                    ),
                );
            }
        }
        w.write(0, "\n");
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

pub fn endpoint_slice(w: &mut PrefixWriter, eps: &Value, events: Option<&[Value]>) {
    let meta = &eps["metadata"];
    name_namespace(w, eps);
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    w.write(0, &format!("AddressType:\t{}\n", s(&eps["addressType"])));
    match eps["ports"].as_array().filter(|p| !p.is_empty()) {
        None => w.write(0, "Ports: <unset>\n"),
        Some(ports) => {
            w.write(0, "Ports:\n");
            w.write(1, "Name\tPort\tProtocol\n");
            w.write(1, "----\t----\t--------\n");
            for p in ports {
                let name = p["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("<unset>");
                let port = p["port"]
                    .as_i64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "<unset>".into());
                w.write(1, &format!("{name}\t{port}\t{}\n", s(&p["protocol"])));
            }
        }
    }
    match eps["endpoints"].as_array().filter(|e| !e.is_empty()) {
        None => w.write(0, "Endpoints: <none>\n"),
        Some(list) => {
            w.write(0, "Endpoints:\n");
            for e in list {
                let addrs: Vec<&str> = e["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                let addrs = if addrs.is_empty() {
                    "<none>".to_string()
                } else {
                    addrs.join(", ")
                };
                w.write(1, &format!("- Addresses:\t{addrs}\n"));
                w.write(2, "Conditions:\n");
                let ready = e["conditions"]["ready"]
                    .as_bool()
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "<unset>".into());
                w.write(3, &format!("Ready:\t{ready}\n"));
                w.write(
                    2,
                    &format!(
                        "Hostname:\t{}\n",
                        e["hostname"].as_str().unwrap_or("<unset>")
                    ),
                );
                if e["targetRef"].is_object() {
                    w.write(
                        2,
                        &format!(
                            "TargetRef:\t{}/{}\n",
                            s(&e["targetRef"]["kind"]),
                            s(&e["targetRef"]["name"])
                        ),
                    );
                }
                w.write(
                    2,
                    &format!(
                        "NodeName:\t{}\n",
                        e["nodeName"].as_str().unwrap_or("<unset>")
                    ),
                );
                w.write(
                    2,
                    &format!("Zone:\t{}\n", e["zone"].as_str().unwrap_or("<unset>")),
                );
            }
        }
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}
