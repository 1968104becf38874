//! The nftables proxier (upstream `pkg/proxy/nftables/proxier.go`): one `ip kube-proxy`
//! table with upstream's layout — verdict maps `service-ips`, `service-nodeports` and
//! `no-endpoint-services` / `no-endpoint-nodeports` dispatching to per-service chains
//! `service-<hash>-<ns>/<name>/<proto>/<port>` that pick an `endpoint-...` chain with
//! `numgen random`, masquerading by mark — written in one `nft -f` transaction: the whole
//! table at first, then only what changed (affinity sets keep their entries).

use crate::iptables::hash16;
use crate::servicechange::{Endpoint, ServiceMap, ServicePort, usable};
use std::collections::HashMap;
use std::fmt::Write;

pub use crate::Options;

pub const TABLE: &str = "kube-proxy";

fn proto(sp: &ServicePort) -> String {
    sp.protocol.to_lowercase()
}

/// `<ns>/<name>/<proto>/<port name or p<port>>` (upstream's chain suffix).
fn base(sp: &ServicePort) -> String {
    let (nsname, port) = match sp.name.rsplit_once(':') {
        Some((n, p)) => (n.to_string(), p.to_string()),
        None => (sp.name.clone(), String::new()),
    };
    let port = if port.is_empty() {
        format!("p{}", sp.port)
    } else {
        port
    };
    format!("{nsname}/{}/{port}", proto(sp))
}

fn h8(s: &str) -> String {
    hash16(s)[..8].to_string()
}

fn svc_hash(sp: &ServicePort) -> String {
    h8(&format!("{}{}", sp.name, proto(sp)))
}

pub fn service_chain(sp: &ServicePort) -> String {
    format!("service-{}-{}", svc_hash(sp), base(sp))
}

pub fn local_chain(sp: &ServicePort) -> String {
    format!("local-{}-{}", svc_hash(sp), base(sp))
}

pub fn external_chain(sp: &ServicePort) -> String {
    format!("external-{}-{}", svc_hash(sp), base(sp))
}

fn ep_suffix(sp: &ServicePort, ep: &Endpoint) -> String {
    format!(
        "{}-{}__{}/{}",
        h8(&format!("{}{}{}", sp.name, proto(sp), ep.addr())),
        base(sp),
        ep.ip,
        ep.port
    )
}

pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("endpoint-{}", ep_suffix(sp, ep))
}

fn affinity_set(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("affinity-{}", ep_suffix(sp, ep))
}

/// Chain and set names go unquoted (nft takes `/`, `.` and `_` in identifiers; quoted
/// names are not accepted as jump targets).
fn ident(s: &str) -> String {
    s.to_string()
}

/// Renders the whole table (an `nft -f` script that replaces it atomically).
pub fn render(map: &ServiceMap, o: &Options) -> String {
    let mark = format!("{:#010x}", 1u32 << o.masquerade_bit);
    let mut chains = String::new();
    let mut service_ips = Vec::new();
    let mut nodeports = Vec::new();
    let mut no_ep = Vec::new();
    let mut no_ep_np = Vec::new();
    let mut sets = String::new();
    for (sp, eps) in map.values() {
        let p = proto(sp);
        let all = usable(eps, None);
        let local = usable(eps, Some(o.node_name.as_str()));
        let cluster = if sp.internal_local { &local } else { &all };
        let svc = service_chain(sp);
        let loc = local_chain(sp);
        let ext = external_chain(sp);
        for ip in &sp.cluster_ips {
            if all.is_empty() {
                no_ep.push(format!("{ip} . {p} . {} : goto reject-chain", sp.port));
            } else if cluster.is_empty() {
                no_ep.push(format!("{ip} . {p} . {} : drop", sp.port));
            } else {
                let target = if sp.internal_local { &loc } else { &svc };
                service_ips.push(format!("{ip} . {p} . {} : goto {}", sp.port, ident(target)));
            }
        }
        let external_eps = if sp.external_local { &local } else { &all };
        for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
            if external_eps.is_empty() {
                no_ep.push(format!("{ip} . {p} . {} : goto reject-chain", sp.port));
            } else {
                service_ips.push(format!("{ip} . {p} . {} : goto {}", sp.port, ident(&ext)));
            }
        }
        if sp.node_port > 0 {
            if external_eps.is_empty() {
                no_ep_np.push(format!("{p} . {} : goto reject-chain", sp.node_port));
            } else {
                nodeports.push(format!("{p} . {} : goto {}", sp.node_port, ident(&ext)));
            }
        }
        let has_external =
            sp.node_port > 0 || !sp.external_ips.is_empty() || !sp.load_balancer_ips.is_empty();
        if has_external && !external_eps.is_empty() {
            let _ = writeln!(chains, "  chain {} {{", ident(&ext));
            if sp.external_local {
                for cidr in &o.cluster_cidrs {
                    let _ = writeln!(
                        chains,
                        "    ip saddr {cidr} goto {} comment \"short-circuit pod traffic\"",
                        ident(&svc)
                    );
                }
                let _ = writeln!(
                    chains,
                    "    fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\""
                );
                let _ = writeln!(
                    chains,
                    "    fib saddr type local goto {} comment \"short-circuit local traffic\"",
                    ident(&svc)
                );
                let _ = writeln!(chains, "    goto {}", ident(&loc));
            } else {
                let _ = writeln!(chains, "    jump mark-for-masquerade");
                let _ = writeln!(chains, "    goto {}", ident(&svc));
            }
            let _ = writeln!(chains, "  }}");
        }
        let mut lb: Vec<(&String, &Vec<&Endpoint>)> = Vec::new();
        if !all.is_empty() {
            lb.push((&svc, &all));
        }
        if (sp.internal_local || sp.external_local) && !local.is_empty() {
            lb.push((&loc, &local));
        }
        for (chain, set) in lb {
            let _ = writeln!(chains, "  chain {} {{", ident(chain));
            if *chain == svc {
                for ip in &sp.cluster_ips {
                    if o.masquerade_all {
                        let _ = writeln!(
                            chains,
                            "    ip daddr {ip} {p} dport {} jump mark-for-masquerade",
                            sp.port
                        );
                    } else {
                        for cidr in &o.cluster_cidrs {
                            let _ = writeln!(
                                chains,
                                "    ip daddr {ip} {p} dport {} ip saddr != {cidr} jump mark-for-masquerade",
                                sp.port
                            );
                        }
                    }
                }
            }
            if sp.affinity_seconds.is_some() {
                for ep in set.iter() {
                    let _ = writeln!(
                        chains,
                        "    ip saddr @{} goto {}",
                        ident(&affinity_set(sp, ep)),
                        ident(&endpoint_chain(sp, ep))
                    );
                }
            }
            let arms: Vec<String> = set
                .iter()
                .enumerate()
                .map(|(i, ep)| format!("{i} : goto {}", ident(&endpoint_chain(sp, ep))))
                .collect();
            let _ = writeln!(
                chains,
                "    numgen random mod {} vmap {{ {} }}",
                set.len(),
                arms.join(" , ")
            );
            let _ = writeln!(chains, "  }}");
        }
        let mut seps: Vec<&Endpoint> = all.clone();
        for e in &local {
            if !seps.contains(e) {
                seps.push(e);
            }
        }
        for ep in seps {
            let chain = endpoint_chain(sp, ep);
            let _ = writeln!(chains, "  chain {} {{", ident(&chain));
            let _ = writeln!(chains, "    ip saddr {} jump mark-for-masquerade", ep.ip);
            if let Some(t) = sp.affinity_seconds {
                let set = affinity_set(sp, ep);
                let _ = writeln!(
                    sets,
                    "  set {} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {t}s ; }}",
                    ident(&set)
                );
                let _ = writeln!(chains, "    update @{} {{ ip saddr }}", ident(&set));
            }
            let _ = writeln!(chains, "    meta l4proto {p} dnat to {}", ep.addr());
            let _ = writeln!(chains, "  }}");
        }
    }
    let elements = |v: &Vec<String>| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }} ;", v.join(" , "))
        }
    };
    let mut out = String::new();
    // Create-then-delete makes the delete valid on the first run; the new table follows
    // in the same transaction.
    let _ = writeln!(out, "add table ip {TABLE}");
    let _ = writeln!(out, "delete table ip {TABLE}");
    let _ = writeln!(out, "table ip {TABLE} {{");
    let _ = writeln!(out, "  comment \"rules for kube-proxy\"");
    let _ = writeln!(
        out,
        "  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ;{} }}",
        elements(&service_ips)
    );
    let _ = writeln!(
        out,
        "  map service-nodeports {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ;{} }}",
        elements(&nodeports)
    );
    let _ = writeln!(
        out,
        "  map no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ;{} }}",
        elements(&no_ep)
    );
    let _ = writeln!(
        out,
        "  map no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ;{} }}",
        elements(&no_ep_np)
    );
    out.push_str(&sets);
    let _ = writeln!(
        out,
        "  chain filter-input {{ type filter hook input priority -110 ; policy accept ; ct state new jump nodeport-endpoints-check ; ct state new jump service-endpoints-check ; }}"
    );
    let _ = writeln!(
        out,
        "  chain filter-forward {{ type filter hook forward priority -110 ; policy accept ; ct state new jump service-endpoints-check ; }}"
    );
    let _ = writeln!(
        out,
        "  chain filter-output {{ type filter hook output priority -110 ; policy accept ; ct state new jump service-endpoints-check ; }}"
    );
    let _ = writeln!(
        out,
        "  chain nat-prerouting {{ type nat hook prerouting priority -100 ; policy accept ; jump services ; }}"
    );
    let _ = writeln!(
        out,
        "  chain nat-output {{ type nat hook output priority -100 ; policy accept ; jump services ; }}"
    );
    let _ = writeln!(
        out,
        "  chain nat-postrouting {{ type nat hook postrouting priority 100 ; policy accept ; jump masquerading ; }}"
    );
    let _ = writeln!(
        out,
        "  chain service-endpoints-check {{ ip daddr . meta l4proto . th dport vmap @no-endpoint-services ; }}"
    );
    let _ = writeln!(
        out,
        "  chain nodeport-endpoints-check {{ fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports ; }}"
    );
    let _ = writeln!(
        out,
        "  chain reject-chain {{ comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; reject ; }}"
    );
    let _ = writeln!(
        out,
        "  chain mark-for-masquerade {{ mark set mark or {mark} ; }}"
    );
    let _ = writeln!(
        out,
        "  chain masquerading {{ mark and {mark} == 0 return ; mark set mark xor {mark} ; masquerade fully-random ; }}"
    );
    let _ = writeln!(
        out,
        "  chain services {{ ip daddr . meta l4proto . th dport vmap @service-ips ; fib daddr type local meta l4proto . th dport vmap @service-nodeports ; }}"
    );
    out.push_str(&chains);
    let _ = writeln!(out, "}}");
    out
}

/// What the last successful sync left in the table: each per-service chain with the
/// text it was written from (its rules and the definitions of the affinity sets they
/// use), and each affinity set's definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    chains: HashMap<String, String>,
    sets: HashMap<String, String>,
}

impl Applied {
    /// The same objects, every chain to be rewritten (the periodic full resync).
    pub fn rewrite_all(&self) -> Applied {
        Applied {
            chains: self
                .chains
                .keys()
                .map(|c| (c.clone(), String::new()))
                .collect(),
            sets: self.sets.clone(),
        }
    }
}

/// The parts of a rendered table.
#[derive(Default)]
struct Parsed<'a> {
    /// (name, definition, elements) of each verdict map.
    maps: Vec<(&'a str, &'a str, &'a str)>,
    sets: Vec<(&'a str, &'a str)>,
    /// One-line chains: (name, definition statements, rule statements).
    base: Vec<(&'a str, Vec<&'a str>, Vec<&'a str>)>,
    /// Per-service chains and their rules.
    chains: Vec<(&'a str, Vec<&'a str>)>,
}

fn parse(full: &str) -> Parsed<'_> {
    let mut p = Parsed::default();
    let mut open: Option<(&str, Vec<&str>)> = None;
    for line in full.lines() {
        let t = line.trim();
        if let Some((_, rules)) = open.as_mut() {
            if t == "}" {
                p.chains.extend(open.take());
            } else {
                rules.push(t);
            }
            continue;
        }
        let Some((kind, rest)) = t.split_once(' ') else {
            continue;
        };
        let Some((name, body)) = rest.split_once(" {") else {
            continue;
        };
        let body = body.trim().trim_end_matches('}').trim();
        match kind {
            "map" => {
                let (def, elements) = match body.split_once(" elements = {") {
                    Some((d, e)) => (
                        d,
                        e.trim()
                            .trim_end_matches(';')
                            .trim()
                            .trim_end_matches('}')
                            .trim(),
                    ),
                    None => (body, ""),
                };
                p.maps.push((name, def, elements));
            }
            "set" => p.sets.push((name, body)),
            "chain" if body.is_empty() => open = Some((name, Vec::new())),
            "chain" => {
                let (mut def, mut rules) = (Vec::new(), Vec::new());
                for st in body.split(" ;").map(str::trim).filter(|s| !s.is_empty()) {
                    if ["type ", "policy ", "comment "]
                        .iter()
                        .any(|k| st.starts_with(k))
                    {
                        def.push(st);
                    } else {
                        rules.push(st);
                    }
                }
                p.base.push((name, def, rules));
            }
            _ => {}
        }
    }
    p
}

/// The chains and sets a rendered table holds, as `Applied` records them.
fn applied_of(p: &Parsed<'_>) -> Applied {
    let sets: HashMap<String, String> = p
        .sets
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    let chains = p
        .chains
        .iter()
        .map(|(name, rules)| {
            let mut key = rules.join("\n");
            for (set, def) in &sets {
                if rules.iter().any(|r| r.contains(&format!("@{set} "))) {
                    let _ = write!(key, "\n{set} {def}");
                }
            }
            (name.to_string(), key)
        })
        .collect();
    Applied { chains, sets }
}

/// A sync against what the table holds (upstream's partial sync): the table, maps, sets
/// and base chains are kept (so affinity sets keep their entries), maps and base chains are
/// refilled, per-service chains are rewritten only when their text changed, and chains and
/// sets that are gone are deleted, all in one transaction. Without `applied` (first sync,
/// after a failure) the table is replaced whole. Returns the script and what it leaves.
pub fn incremental(full: &str, applied: Option<&Applied>) -> (String, Applied) {
    let p = parse(full);
    let now = applied_of(&p);
    let Some(before) = applied else {
        return (full.to_string(), now);
    };
    let t = format!("ip {TABLE}");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "add table {t} {{ comment \"rules for kube-proxy\" ; }}"
    );
    for (name, def, _) in &p.maps {
        let _ = writeln!(out, "add map {t} {name} {{ {def} }}");
        let _ = writeln!(out, "flush map {t} {name}");
    }
    for (name, def, _) in &p.base {
        let def: String = def.iter().map(|d| format!("{d} ; ")).collect();
        let _ = writeln!(out, "add chain {t} {name} {{ {def}}}");
        let _ = writeln!(out, "flush chain {t} {name}");
    }
    let rewrite: Vec<&(&str, Vec<&str>)> = p
        .chains
        .iter()
        .filter(|(name, _)| before.chains.get(*name) != now.chains.get(*name))
        .collect();
    for (name, _) in &rewrite {
        let _ = writeln!(out, "add chain {t} {name}");
        let _ = writeln!(out, "flush chain {t} {name}");
    }
    // Chains that are gone, after everything that could jump to them was flushed.
    for name in before
        .chains
        .keys()
        .filter(|c| !now.chains.contains_key(*c))
    {
        let _ = writeln!(out, "flush chain {t} {name}");
    }
    for name in before
        .chains
        .keys()
        .filter(|c| !now.chains.contains_key(*c))
    {
        let _ = writeln!(out, "delete chain {t} {name}");
    }
    for (name, def) in &before.sets {
        if now.sets.get(name) != Some(def) {
            let _ = writeln!(out, "delete set {t} {name}");
        }
    }
    for (name, def) in &p.sets {
        let _ = writeln!(out, "add set {t} {name} {{ {def} }}");
    }
    for (name, rules) in &rewrite {
        for r in rules {
            let _ = writeln!(out, "add rule {t} {name} {r}");
        }
    }
    for (name, _, rules) in &p.base {
        for r in rules {
            let _ = writeln!(out, "add rule {t} {name} {r}");
        }
    }
    for (name, _, elements) in &p.maps {
        if !elements.is_empty() {
            let _ = writeln!(out, "add element {t} {name} {{ {elements} }}");
        }
    }
    (out, now)
}

/// `kube-proxy --cleanup`: the whole table goes (creating it first makes the delete valid
/// when there is none).
pub fn cleanup() -> Result<(), String> {
    apply(&format!("add table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

/// Applies the script in one `nft -f` transaction.
pub fn apply(script: &str) -> Result<(), String> {
    crate::feed("nft", &["-f", "-"], script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servicechange::{Endpoint, ServicePort};

    fn service(
        name: &str,
        ip: &str,
        eps: &[&str],
        affinity: Option<i32>,
    ) -> (String, (ServicePort, Vec<Endpoint>)) {
        let sp = ServicePort {
            name: format!("default/{name}:http"),
            protocol: "TCP".into(),
            cluster_ips: vec![ip.into()],
            port: 80,
            node_port: 0,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_seconds: affinity,
            internal_local: false,
            external_local: false,
        };
        let eps = eps
            .iter()
            .map(|ip| Endpoint {
                ip: ip.to_string(),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                node: None,
            })
            .collect();
        (sp.name.clone(), (sp, eps))
    }

    fn opts() -> Options {
        Options {
            node_name: "n".into(),
            cluster_cidrs: vec!["10.244.0.0/16".into()],
            masquerade_all: false,
            masquerade_bit: 14,
        }
    }

    #[test]
    fn incremental_sync_rewrites_only_what_changed() {
        let first: ServiceMap = [
            service("a", "10.0.0.1", &["10.244.0.2"], Some(10800)),
            service("b", "10.0.0.2", &["10.244.0.3", "10.244.0.4"], None),
        ]
        .into();
        let full = render(&first, &opts());
        let (script, applied) = incremental(&full, None);
        assert_eq!(script, full, "the first sync replaces the table");
        // b loses an endpoint; a is untouched.
        let second: ServiceMap = [
            service("a", "10.0.0.1", &["10.244.0.2"], Some(10800)),
            service("b", "10.0.0.2", &["10.244.0.3"], None),
        ]
        .into();
        let (script, after) = incremental(&render(&second, &opts()), Some(&applied));
        assert!(!script.contains("delete table"), "{script}");
        let a = service_chain(&second["default/a:http"].0);
        assert!(
            !script.contains(&format!("flush chain ip kube-proxy {a}\n")),
            "{script}"
        );
        assert!(
            !script.contains(&format!("add rule ip kube-proxy {a} ")),
            "{script}"
        );
        // `add set` of an existing set with the same definition keeps its entries.
        assert!(
            !script.contains("delete set"),
            "affinity sets are kept: {script}"
        );
        let b = service_chain(&second["default/b:http"].0);
        assert!(
            script.contains(&format!("flush chain ip kube-proxy {b}\n")),
            "{script}"
        );
        let gone = endpoint_chain(&first["default/b:http"].0, &first["default/b:http"].1[1]);
        assert!(
            script.contains(&format!("delete chain ip kube-proxy {gone}\n")),
            "{script}"
        );
        assert!(
            script.contains("add element ip kube-proxy service-ips { 10.0.0.1 . tcp . 80 : goto"),
            "{script}"
        );
        assert!(script.contains("add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips"), "{script}");
        // A periodic resync rewrites every chain but keeps the sets.
        let (script, _) = incremental(&render(&second, &opts()), Some(&after.rewrite_all()));
        assert!(script.contains(&format!("flush chain ip kube-proxy {a}\n")));
        assert!(
            script.contains("add set ip kube-proxy affinity-") && !script.contains("delete set"),
            "{script}"
        );
        // a's affinity goes away: its set is deleted after its chains are flushed.
        let third: ServiceMap = [
            service("a", "10.0.0.1", &["10.244.0.2"], None),
            service("b", "10.0.0.2", &["10.244.0.3"], None),
        ]
        .into();
        let (script, _) = incremental(&render(&third, &opts()), Some(&after));
        let flush = script.find("flush chain ip kube-proxy endpoint-").unwrap();
        let delete = script.find("delete set ip kube-proxy affinity-").unwrap();
        assert!(flush < delete, "{script}");
    }
}
