//! EndpointSlices (upstream `pkg/registry/discovery/endpointslice`).

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

const ADDRESS_TYPES: &[&str] = &["IPv4", "IPv6", "FQDN"];

pub fn strategy() -> Typed<EndpointSlice> {
    let mut t = simple(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
    );
    t.tracks_generation = true;
    t.default = |s: &mut EndpointSlice| {
        for p in s.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
            p.name.get_or_insert_with(String::new);
        }
    };
    t.validate = |s: &EndpointSlice| {
        let mut c = Vec::new();
        if !ADDRESS_TYPES.contains(&s.address_type.as_str()) {
            c.push(Cause::not_supported(
                "addressType",
                &json!(s.address_type),
                ADDRESS_TYPES,
            ));
        }
        if s.endpoints.len() > 1000 {
            c.push(Cause::too_long("endpoints", 1000));
        }
        for (i, e) in s.endpoints.iter().enumerate() {
            if e.addresses.is_empty() || e.addresses.len() > 100 {
                c.push(Cause::invalid(
                    &format!("endpoints[{i}].addresses"),
                    &json!(e.addresses),
                    "must contain at least 1 address but no more than 100",
                ));
            }
            for (j, a) in e.addresses.iter().enumerate() {
                let ok = match s.address_type.as_str() {
                    "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                    "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                    _ => apimachinery::validation::dns1123_subdomain(a).is_empty(),
                };
                if !ok {
                    c.push(Cause::invalid(
                        &format!("endpoints[{i}].addresses[{j}]"),
                        &json!(a),
                        &format!("must be a valid {} address", s.address_type),
                    ));
                }
            }
        }
        c
    };
    t.validate_update = |n, o| {
        immutable(
            "addressType",
            &json!(n.address_type),
            &json!(o.address_type),
        )
        .into_iter()
        .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o: &Value| {
        let ports: Vec<String> = o["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p["port"].as_i64() {
                Some(n) => n.to_string(),
                None => "<unset>".into(),
            })
            .collect();
        let addrs: Vec<&str> = o["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let shown = if addrs.len() > 3 {
            format!("{} + {} more...", addrs[..3].join(","), addrs.len() - 3)
        } else if addrs.is_empty() {
            "<unset>".into()
        } else {
            addrs.join(",")
        };
        vec![
            o["addressType"].clone(),
            json!(if ports.is_empty() {
                "<unset>".into()
            } else {
                ports.join(",")
            }),
            json!(shown),
            age(o),
        ]
    };
    t
}
