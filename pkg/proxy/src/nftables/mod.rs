//! The nftables proxier (upstream `pkg/proxy/nftables/proxier.go`): one `ip kube-proxy`
//! table with upstream's layout — verdict maps `service-ips`, `service-nodeports` and
//! `no-endpoint-services` / `no-endpoint-nodeports` dispatching to per-service chains
//! `service-<hash>-<ns>/<name>/<proto>/<port>` that pick an `endpoint-...` chain with
//! `numgen random`, masquerading by mark — replaced in one `nft -f` transaction.

use crate::iptables::hash16;
use crate::servicechange::{Endpoint, ServiceMap, ServicePort, usable};
use std::fmt::Write;

pub struct Options {
    pub node_name: String,
    pub cluster_cidrs: Vec<String>,
    pub masquerade_all: bool,
    pub masquerade_bit: i32,
}

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

/// Applies the script in one `nft -f` transaction.
pub fn apply(script: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running nft: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
