//! ServiceCIDRs (upstream `pkg/registry/networking/servicecidr`): the ranges ClusterIPs
//! come from; the apiserver creates `kubernetes` from `--service-cluster-ip-range`.

use crate::printers::{age, cols, join};
use crate::typed::{Typed, immutable, simple};
use apimachinery::Cause;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use serde_json::json;

pub fn strategy() -> Typed<ServiceCIDR> {
    let mut t = simple(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        "servicecidrs",
        false,
        &[],
    );
    t.info.subresources = vec!["status".into()];
    t.validate = |s: &ServiceCIDR| {
        let cidrs = s
            .spec
            .as_ref()
            .and_then(|s| s.cidrs.clone())
            .unwrap_or_default();
        let mut c = Vec::new();
        if cidrs.is_empty() || cidrs.len() > 2 {
            c.push(Cause::invalid(
                "spec.cidrs",
                &json!(cidrs),
                "at least one and max two CIDRs are allowed",
            ));
        }
        for (i, cidr) in cidrs.iter().enumerate() {
            let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
                ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
            });
            if !ok {
                c.push(Cause::invalid(
                    &format!("spec.cidrs[{i}]"),
                    &json!(cidr),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
        c
    };
    t.validate_update = |n, o| {
        let c = |s: &ServiceCIDR| json!(s.spec.as_ref().map(|s| &s.cidrs));
        immutable("spec.cidrs", &c(n), &c(o)).into_iter().collect()
    };
    t.columns = Some(|| cols(&[("CIDRs", "string", 0), ("Age", "string", 0)]));
    t.row = |o| vec![json!(join(&o["spec"]["cidrs"], None)), age(o)];
    t
}
