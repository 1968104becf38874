//! Kubernetes DNS records (the DNS specification upstream's add-ons implement,
//! `kubernetes/dns/docs/specification.md`):
//! - `<svc>.<ns>.svc.<domain>` A: the ClusterIP, or the ready endpoints of a headless
//!   service; CNAME to `spec.externalName` for an ExternalName service (any query type); `<hostname>.<svc>.<ns>.svc.<domain>` for endpoints with a hostname;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV: named ports;
//! - `<a-b-c-d>.<ns>.pod.<domain>` A;
//! - PTR for cluster IPs and endpoint IPs under `in-addr.arpa`.
//!
//! Names in the cluster domain that do not exist are NXDOMAIN; other names are REFUSED
//! here and forwarded upstream by the server.

use crate::message::{A, ANY, NOERROR, NXDOMAIN, PTR, Question, REFUSED, Rdata, Record, SRV};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::sync::Arc;

pub const TTL: u32 = 5;

pub struct Zone<'a> {
    pub domain: &'a str,
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<EndpointSlice>],
}

fn ipv4(s: &str) -> Option<[u8; 4]> {
    s.parse::<std::net::Ipv4Addr>().ok().map(|a| a.octets())
}

impl Zone<'_> {
    fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata.name.as_deref() == Some(name)
            })
            .map(|s| s.as_ref())
    }

    /// Ready IPv4 endpoints of a service: (ip, hostname).
    fn endpoints(&self, ns: &str, name: &str) -> Vec<(String, Option<String>)> {
        let mut v = Vec::new();
        for s in self.slices {
            let owned = s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .map(String::as_str)
                    == Some(name);
            if !owned || s.address_type != "IPv4" {
                continue;
            }
            for e in &s.endpoints {
                if e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    for a in &e.addresses {
                        v.push((a.clone(), e.hostname.clone()));
                    }
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// (rcode, answers) for one question.
    pub fn answer(&self, q: &Question) -> (u8, Vec<Record>) {
        let name = q.name.trim_end_matches('.').to_lowercase();
        let domain = self.domain.trim_end_matches('.');
        if let Some(rev) = name.strip_suffix(".in-addr.arpa") {
            return self.ptr(q, rev);
        }
        let Some(rest) = name.strip_suffix(&format!(".{domain}")) else {
            return (REFUSED, Vec::new());
        };
        let labels: Vec<&str> = rest.split('.').collect();
        let a = |ip: [u8; 4]| Record {
            name: q.name.clone(),
            ttl: TTL,
            data: Rdata::A(ip),
        };
        let wants = |t: u16| q.qtype == t || q.qtype == ANY;
        match labels.as_slice() {
            // <svc>.<ns>.svc
            [svc, ns, "svc"] => {
                let Some(s) = self.service(ns, svc) else {
                    return (NXDOMAIN, Vec::new());
                };
                let spec = s.spec.clone().unwrap_or_default();
                if spec.type_.as_deref() == Some("ExternalName") {
                    // The alias answers every query type; the client resolves its target.
                    let target = spec.external_name.unwrap_or_default();
                    let target = target.trim_end_matches('.');
                    if target.is_empty() {
                        return (NOERROR, Vec::new());
                    }
                    return (
                        NOERROR,
                        vec![Record {
                            name: q.name.clone(),
                            ttl: TTL,
                            data: Rdata::Cname(target.to_string()),
                        }],
                    );
                }
                if !wants(A) {
                    return (NOERROR, Vec::new());
                }
                match spec.cluster_ip.as_deref() {
                    Some(ip) if ip != "None" && !ip.is_empty() => {
                        (NOERROR, ipv4(ip).map(a).into_iter().collect())
                    }
                    _ => {
                        let eps = self.endpoints(ns, svc);
                        (
                            NOERROR,
                            eps.iter().filter_map(|(ip, _)| ipv4(ip)).map(a).collect(),
                        )
                    }
                }
            }
            // <hostname>.<svc>.<ns>.svc
            [host, svc, ns, "svc"] => {
                let eps = self.endpoints(ns, svc);
                let found: Vec<Record> = eps
                    .iter()
                    .filter(|(_, h)| h.as_deref() == Some(*host))
                    .filter_map(|(ip, _)| ipv4(ip))
                    .map(a)
                    .collect();
                if found.is_empty() && self.service(ns, svc).is_none() {
                    return (NXDOMAIN, Vec::new());
                }
                if found.is_empty() {
                    return (NXDOMAIN, Vec::new());
                }
                (NOERROR, if wants(A) { found } else { Vec::new() })
            }
            // _<port>._<proto>.<svc>.<ns>.svc
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                let Some(s) = self.service(ns, svc) else {
                    return (NXDOMAIN, Vec::new());
                };
                let (pn, pr) = (&port[1..], proto[1..].to_uppercase());
                let p = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.ports.as_ref())
                    .and_then(|ps| {
                        ps.iter().find(|p| {
                            p.name.as_deref() == Some(pn)
                                && p.protocol.as_deref().unwrap_or("TCP") == pr
                        })
                    });
                let Some(p) = p else {
                    return (NXDOMAIN, Vec::new());
                };
                if !wants(SRV) {
                    return (NOERROR, Vec::new());
                }
                let target = format!("{svc}.{ns}.svc.{domain}");
                (
                    NOERROR,
                    vec![Record {
                        name: q.name.clone(),
                        ttl: TTL,
                        data: Rdata::Srv {
                            priority: 0,
                            weight: 100,
                            port: p.port as u16,
                            target,
                        },
                    }],
                )
            }
            // <a-b-c-d>.<ns>.pod
            [ip, _ns, "pod"] => match ipv4(&ip.replace('-', ".")) {
                Some(addr) => (NOERROR, if wants(A) { vec![a(addr)] } else { Vec::new() }),
                None => (NXDOMAIN, Vec::new()),
            },
            // The zone's own structure exists but holds nothing itself.
            [_, "svc"] | ["svc"] | [_, "pod"] | ["pod"] => (NOERROR, Vec::new()),
            _ => (NXDOMAIN, Vec::new()),
        }
    }

    fn ptr(&self, q: &Question, rev: &str) -> (u8, Vec<Record>) {
        let mut parts: Vec<&str> = rev.split('.').collect();
        parts.reverse();
        let ip = parts.join(".");
        let domain = self.domain.trim_end_matches('.');
        for s in self.services {
            if s.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref()) == Some(ip.as_str()) {
                let target = format!(
                    "{}.{}.svc.{domain}",
                    s.metadata.name.as_deref().unwrap_or_default(),
                    s.metadata.namespace.as_deref().unwrap_or_default()
                );
                return (
                    NOERROR,
                    vec![Record {
                        name: q.name.clone(),
                        ttl: TTL,
                        data: Rdata::Ptr(target),
                    }],
                );
            }
        }
        if q.qtype != PTR && q.qtype != ANY {
            return (NOERROR, Vec::new());
        }
        (NXDOMAIN, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::CNAME;

    #[test]
    fn external_name_services_answer_a_cname_for_any_query_type() {
        use k8s_openapi::api::core::v1::ServiceSpec;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("ext".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some("foo.example.com.".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let services = [Arc::new(svc)];
        let zone = Zone {
            domain: "cluster.local",
            services: &services,
            slices: &[],
        };
        for qtype in [A, CNAME, ANY] {
            let q = Question {
                name: "ext.default.svc.cluster.local".into(),
                qtype,
                qclass: 1,
            };
            let (rcode, answers) = zone.answer(&q);
            assert_eq!(rcode, NOERROR);
            assert!(
                matches!(&answers[..], [Record { data: Rdata::Cname(t), .. }] if t == "foo.example.com")
            );
        }
    }
}
