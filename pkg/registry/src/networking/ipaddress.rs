//! IPAddresses (upstream `pkg/registry/networking/ipaddress`): one object per allocated
//! Service IP, named by the address; the ClusterIP allocator writes them.

use crate::printers::cols;
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::networking::v1::IPAddress;
use serde_json::json;

pub fn strategy() -> Typed<IPAddress> {
    let mut t = simple(
        "networking.k8s.io",
        "v1",
        "IPAddress",
        "ipaddresses",
        false,
        &["ip"],
    );
    // The name is the canonical textual form of the address.
    t.name_rule = |name| match name.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.to_string() == name => Vec::new(),
        Ok(ip) => vec![format!("must be in canonical form (\"{ip}\")")],
        Err(_) => vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()],
    };
    t.validate = |ip: &IPAddress| {
        let Some(spec) = &ip.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if spec.parent_ref.resource.is_empty() {
            c.push(Cause::required("spec.parentRef.resource", ""));
        }
        if spec.parent_ref.name.is_empty() {
            c.push(Cause::required("spec.parentRef.name", ""));
        }
        c
    };
    t.validate_update = |n, o| {
        let p = |ip: &IPAddress| json!(ip.spec.as_ref().map(|s| &s.parent_ref));
        immutable("spec.parentRef", &p(n), &p(o))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| cols(&[("ParentRef", "string", 0)]));
    t.row = |o| {
        let p = &o["spec"]["parentRef"];
        let group = p["group"].as_str().unwrap_or_default();
        let res = if group.is_empty() {
            p["resource"].as_str().unwrap_or_default().to_string()
        } else {
            format!("{}.{group}", p["resource"].as_str().unwrap_or_default())
        };
        let ns = p["namespace"].as_str().unwrap_or_default();
        let name = p["name"].as_str().unwrap_or_default();
        vec![json!(if ns.is_empty() {
            format!("{res}/{name}")
        } else {
            format!("{res}/{ns}/{name}")
        })]
    };
    t
}
