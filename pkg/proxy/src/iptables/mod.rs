//! The iptables proxier (upstream `pkg/proxy/iptables/proxier.go`): upstream's chain
//! layout in the `nat` and `filter` tables, rendered whole from the service map and
//! applied atomically with `iptables-restore --noflush` (every KUBE-* chain is declared,
//! so flushed and rewritten; chains of services that went are deleted).

use crate::servicechange::{Endpoint, ServiceMap, ServicePort, usable};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

pub use crate::Options;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The first 16 characters of base32(sha256(s)) (upstream's chain-name hash).
pub fn hash16(s: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let bytes = digest.as_ref();
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for b in bytes {
        buf = (buf << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
            if out.len() == 16 {
                return out;
            }
        }
    }
    out
}

fn proto(sp: &ServicePort) -> String {
    sp.protocol.to_lowercase()
}

pub fn svc_chain(sp: &ServicePort) -> String {
    format!("KUBE-SVC-{}", hash16(&format!("{}{}", sp.name, proto(sp))))
}

pub fn svl_chain(sp: &ServicePort) -> String {
    format!("KUBE-SVL-{}", hash16(&format!("{}{}", sp.name, proto(sp))))
}

pub fn ext_chain(sp: &ServicePort) -> String {
    format!("KUBE-EXT-{}", hash16(&format!("{}{}", sp.name, proto(sp))))
}

pub fn sep_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{}{}{}", sp.name, proto(sp), ep.addr()))
    )
}

/// The chains kube-proxy owns in each table that always exist.
const NAT_CHAINS: [&str; 4] = [
    "KUBE-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
];
const FILTER_CHAINS: [&str; 5] = [
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
];

/// Jumps from the built-in chains (upstream `iptablesJumpChains`): (table, chain,
/// rule args).
pub fn jump_rules() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    // (table, chain, new connections only, comment, target)
    const JUMPS: [(&str, &str, bool, &str, &str); 12] = [
        (
            "filter",
            "INPUT",
            true,
            "kubernetes load balancer firewall",
            "KUBE-PROXY-FIREWALL",
        ),
        (
            "filter",
            "INPUT",
            false,
            "kubernetes health check service ports",
            "KUBE-NODEPORTS",
        ),
        (
            "filter",
            "INPUT",
            true,
            "kubernetes externally-visible service portals",
            "KUBE-EXTERNAL-SERVICES",
        ),
        (
            "filter",
            "FORWARD",
            true,
            "kubernetes load balancer firewall",
            "KUBE-PROXY-FIREWALL",
        ),
        (
            "filter",
            "FORWARD",
            false,
            "kubernetes forwarding rules",
            "KUBE-FORWARD",
        ),
        (
            "filter",
            "FORWARD",
            true,
            "kubernetes service portals",
            "KUBE-SERVICES",
        ),
        (
            "filter",
            "FORWARD",
            true,
            "kubernetes externally-visible service portals",
            "KUBE-EXTERNAL-SERVICES",
        ),
        (
            "filter",
            "OUTPUT",
            true,
            "kubernetes load balancer firewall",
            "KUBE-PROXY-FIREWALL",
        ),
        (
            "filter",
            "OUTPUT",
            true,
            "kubernetes service portals",
            "KUBE-SERVICES",
        ),
        (
            "nat",
            "OUTPUT",
            false,
            "kubernetes service portals",
            "KUBE-SERVICES",
        ),
        (
            "nat",
            "PREROUTING",
            false,
            "kubernetes service portals",
            "KUBE-SERVICES",
        ),
        (
            "nat",
            "POSTROUTING",
            false,
            "kubernetes postrouting rules",
            "KUBE-POSTROUTING",
        ),
    ];
    JUMPS
        .iter()
        .map(|&(table, chain, new_only, comment, target)| {
            let mut args = Vec::new();
            if new_only {
                args.extend(["-m", "conntrack", "--ctstate", "NEW"]);
            }
            args.extend(["-m", "comment", "--comment", comment, "-j", target]);
            (table, chain, args)
        })
        .collect()
}

/// Makes sure the jumps exist (`-C`, else `-I` at the top, as upstream).
pub fn ensure_jumps() -> Result<(), String> {
    for (table, chain, args) in jump_rules() {
        let target = args.last().copied().unwrap_or_default();
        // The target chain must exist before a rule can jump to it.
        let _ = std::process::Command::new("iptables")
            .args(["-w", "-t", table, "-N", target])
            .output();
        let check = std::process::Command::new("iptables")
            .args(["-w", "-t", table, "-C", chain])
            .args(&args)
            .output()
            .map_err(|e| format!("running iptables: {e}"))?;
        if !check.status.success() {
            let out = std::process::Command::new("iptables")
                .args(["-w", "-t", table, "-I", chain])
                .args(&args)
                .output()
                .map_err(|e| format!("running iptables: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "iptables -t {table} -I {chain}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    Ok(())
}

/// `kube-proxy --cleanup`: the jumps from the built-in chains, then every KUBE-* chain of
/// the `nat` and `filter` tables.
pub fn cleanup() -> Result<(), String> {
    let iptables = |args: &[&str]| {
        std::process::Command::new("iptables")
            .arg("-w")
            .args(args)
            .output()
            .map_err(|e| format!("running iptables: {e}"))
    };
    for (table, chain, args) in jump_rules() {
        // A rule inserted twice is deleted twice.
        while iptables(&[&["-t", table, "-D", chain], &args[..]].concat())?
            .status
            .success()
        {}
    }
    for table in ["nat", "filter"] {
        let out = std::process::Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .map_err(|e| format!("running iptables-save: {e}"))?;
        let chains: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|l| l.split(' ').next())
            .filter(|c| c.starts_with("KUBE-"))
            .map(String::from)
            .collect();
        for c in &chains {
            iptables(&["-t", table, "-F", c])?;
        }
        for c in &chains {
            let out = iptables(&["-t", table, "-X", c])?;
            if !out.status.success() {
                return Err(format!(
                    "iptables -t {table} -X {c}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    Ok(())
}

/// The KUBE-SVC/SVL/EXT/SEP chains the `nat` table holds now (to delete stale ones).
pub fn existing_service_chains() -> BTreeSet<String> {
    let out = std::process::Command::new("iptables-save")
        .args(["-t", "nat"])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| {
            ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-"]
                .iter()
                .any(|p| c.starts_with(p))
        })
        .map(String::from)
        .collect()
}

fn comment(c: &str) -> String {
    format!("-m comment --comment \"{c}\"")
}

/// The probability rule for endpoint `i` of `n` (upstream's `%0.10f`).
fn probability(i: usize, n: usize) -> String {
    format!("{:.10}", 1.0 / (n - i) as f64)
}

/// Renders the whole `iptables-restore` input.
pub fn render(map: &ServiceMap, o: &Options, existing: &BTreeSet<String>) -> String {
    let mark = format!("{:#x}", 1u32 << o.masquerade_bit);
    let mut filter_rules = String::new();
    let mut nat_chains: BTreeSet<String> = NAT_CHAINS.iter().map(|s| s.to_string()).collect();
    let mut nat_rules = String::new();
    let nat = &mut nat_rules;
    let filt = &mut filter_rules;
    let _ = writeln!(nat, "-A KUBE-MARK-MASQ -j MARK --or-mark {mark}");
    let _ = writeln!(
        nat,
        "-A KUBE-POSTROUTING -m mark ! --mark {mark}/{mark} -j RETURN"
    );
    let _ = writeln!(nat, "-A KUBE-POSTROUTING -j MARK --xor-mark {mark}");
    let _ = writeln!(
        nat,
        "-A KUBE-POSTROUTING {} -j MASQUERADE --random-fully",
        comment("kubernetes service traffic requiring SNAT")
    );
    let _ = writeln!(
        filt,
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    );
    let _ = writeln!(
        filt,
        "-A KUBE-FORWARD {} -m mark --mark {mark}/{mark} -j ACCEPT",
        comment("kubernetes forwarding rules")
    );
    let _ = writeln!(
        filt,
        "-A KUBE-FORWARD {} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        comment("kubernetes forwarding conntrack rule")
    );
    for (sp, eps) in map.values() {
        let p = proto(sp);
        let name = &sp.name;
        let cluster_eps = usable(eps, sp.internal_local.then_some(o.node_name.as_str()));
        let all_eps = usable(eps, None);
        let local_eps = usable(eps, Some(o.node_name.as_str()));
        let svc = svc_chain(sp);
        let svl = svl_chain(sp);
        let ext = ext_chain(sp);
        let has_external =
            sp.node_port > 0 || !sp.external_ips.is_empty() || !sp.load_balancer_ips.is_empty();
        let external_eps = if sp.external_local {
            &local_eps
        } else {
            &all_eps
        };
        // Which chain cluster traffic uses.
        let cluster_chain = if sp.internal_local { &svl } else { &svc };
        for ip in &sp.cluster_ips {
            let m = format!("-m {p} -p {p} -d {ip}/32 --dport {}", sp.port);
            if all_eps.is_empty() {
                let _ = writeln!(
                    filt,
                    "-A KUBE-SERVICES {} {m} -j REJECT",
                    comment(&format!("{name} has no endpoints"))
                );
            } else if cluster_eps.is_empty() {
                let _ = writeln!(
                    filt,
                    "-A KUBE-SERVICES {} {m} -j DROP",
                    comment(&format!("{name} has no local endpoints"))
                );
            } else {
                let _ = writeln!(
                    nat,
                    "-A KUBE-SERVICES {} {m} -j {cluster_chain}",
                    comment(&format!("{name} cluster IP"))
                );
            }
        }
        // External destinations: externalIPs, load-balancer IPs, NodePorts.
        if has_external {
            let ext_target = if external_eps.is_empty() {
                None
            } else {
                Some(&ext)
            };
            // Without endpoints, external IPs are rejected and load-balancer IPs dropped.
            let destinations = [
                (&sp.external_ips, "external IP", "REJECT"),
                (&sp.load_balancer_ips, "loadbalancer IP", "DROP"),
            ];
            for (ips, what, refuse) in destinations {
                for ip in ips {
                    let m = format!("-m {p} -p {p} -d {ip}/32 --dport {}", sp.port);
                    match ext_target {
                        Some(t) => {
                            let _ = writeln!(
                                nat,
                                "-A KUBE-SERVICES {} {m} -j {t}",
                                comment(&format!("{name} {what}"))
                            );
                        }
                        None => {
                            let _ = writeln!(
                                filt,
                                "-A KUBE-EXTERNAL-SERVICES {} {m} -j {refuse}",
                                comment(&format!("{name} has no endpoints"))
                            );
                        }
                    }
                }
            }
            if sp.node_port > 0 {
                let m = format!("-m {p} -p {p} --dport {}", sp.node_port);
                match ext_target {
                    Some(t) => {
                        let _ = writeln!(nat, "-A KUBE-NODEPORTS {} {m} -j {t}", comment(name));
                    }
                    None => {
                        let _ = writeln!(
                            filt,
                            "-A KUBE-EXTERNAL-SERVICES {} -m addrtype --dst-type LOCAL {m} -j REJECT",
                            comment(&format!("{name} has no endpoints"))
                        );
                    }
                }
            }
            if ext_target.is_some() {
                nat_chains.insert(ext.clone());
                if sp.external_local {
                    // Pod traffic may still go anywhere; outside traffic stays on the node
                    // and keeps its source IP.
                    for cidr in &o.cluster_cidrs {
                        let _ = writeln!(
                            nat,
                            "-A {ext} {} -s {cidr} -j {svc}",
                            comment(&format!("pod traffic for {name} external destinations"))
                        );
                    }
                    let _ = writeln!(
                        nat,
                        "-A {ext} {} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                        comment(&format!(
                            "masquerade LOCAL traffic for {name} external destinations"
                        ))
                    );
                    let _ = writeln!(
                        nat,
                        "-A {ext} {} -m addrtype --src-type LOCAL -j {svc}",
                        comment(&format!(
                            "route LOCAL traffic for {name} external destinations"
                        ))
                    );
                    let _ = writeln!(nat, "-A {ext} -j {svl}");
                } else {
                    let _ = writeln!(
                        nat,
                        "-A {ext} {} -j KUBE-MARK-MASQ",
                        comment(&format!(
                            "masquerade traffic for {name} external destinations"
                        ))
                    );
                    let _ = writeln!(nat, "-A {ext} -j {svc}");
                }
            }
        }
        // The load-balancing chains: SVC over every usable endpoint, SVL over this
        // node's (for Local policies).
        let mut lb: Vec<(&String, &Vec<&Endpoint>)> = Vec::new();
        if !all_eps.is_empty() {
            lb.push((&svc, &all_eps));
        }
        if (sp.internal_local || sp.external_local) && !local_eps.is_empty() {
            lb.push((&svl, &local_eps));
        }
        for (chain, set) in lb {
            nat_chains.insert(chain.clone());
            if *chain == svc {
                for ip in &sp.cluster_ips {
                    let m = format!("-m {p} -p {p} -d {ip}/32 --dport {}", sp.port);
                    if o.masquerade_all {
                        let _ = writeln!(
                            nat,
                            "-A {svc} {} {m} -j KUBE-MARK-MASQ",
                            comment(&format!("{name} cluster IP"))
                        );
                    } else {
                        for cidr in &o.cluster_cidrs {
                            let _ = writeln!(
                                nat,
                                "-A {svc} {} {m} ! -s {cidr} -j KUBE-MARK-MASQ",
                                comment(&format!("{name} cluster IP"))
                            );
                        }
                    }
                }
            }
            if let Some(t) = sp.affinity_seconds {
                for ep in set.iter() {
                    let sep = sep_chain(sp, ep);
                    let _ = writeln!(
                        nat,
                        "-A {chain} {} -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {t} --reap -j {sep}",
                        comment(&format!("{name} -> {}", ep.addr()))
                    );
                }
            }
            let n = set.len();
            for (i, ep) in set.iter().enumerate() {
                let sep = sep_chain(sp, ep);
                let c = comment(&format!("{name} -> {}", ep.addr()));
                if i + 1 < n {
                    let _ = writeln!(
                        nat,
                        "-A {chain} {c} -m statistic --mode random --probability {} -j {sep}",
                        probability(i, n)
                    );
                } else {
                    let _ = writeln!(nat, "-A {chain} {c} -j {sep}");
                }
            }
        }
        // One chain per endpoint, shared by SVC and SVL.
        let mut seps: Vec<&Endpoint> = all_eps.clone();
        for e in &local_eps {
            if !seps.contains(e) {
                seps.push(e);
            }
        }
        for ep in seps {
            let sep = sep_chain(sp, ep);
            if !nat_chains.insert(sep.clone()) {
                continue;
            }
            let c = comment(name);
            let _ = writeln!(nat, "-A {sep} {c} -s {}/32 -j KUBE-MARK-MASQ", ep.ip);
            let affinity = if sp.affinity_seconds.is_some() {
                format!(" -m recent --name {sep} --mask 255.255.255.255 --rsource --set")
            } else {
                String::new()
            };
            let _ = writeln!(
                nat,
                "-A {sep} {c}{affinity} -m {p} -p {p} -j DNAT --to-destination {}",
                ep.addr()
            );
        }
    }
    // NodePorts are matched last, on local destinations only.
    let _ = writeln!(
        nat,
        "-A KUBE-SERVICES {} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
        comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    );
    let mut out = String::from("*filter\n");
    for c in FILTER_CHAINS {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    out.push_str(&filter_rules);
    out.push_str("COMMIT\n*nat\n");
    for c in &nat_chains {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    // Stale chains: declared (so flushed) then deleted.
    let stale: Vec<&String> = existing
        .iter()
        .filter(|c| !nat_chains.contains(*c))
        .collect();
    for c in &stale {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    out.push_str(&nat_rules);
    for c in &stale {
        let _ = writeln!(out, "-X {c}");
    }
    out.push_str("COMMIT\n");
    out
}

/// The rules of each per-service chain (KUBE-SVC/SVL/EXT/SEP) last written to the kernel.
pub type AppliedChains = HashMap<String, String>;

fn is_service_chain(c: &str) -> bool {
    ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-"]
        .iter()
        .any(|p| c.starts_with(p))
}

/// A partial sync (upstream's minimized `iptables-restore`): the per-service chains whose
/// rules are the same as at the last successful sync are neither declared (which would
/// flush them) nor rewritten; everything else of the full input stays. Without `applied`
/// (first sync, after a failure, periodic resync) the input is kept whole. Returns the
/// input to apply and the chains it leaves in the kernel.
pub fn minimize(full: &str, applied: Option<&AppliedChains>) -> (String, AppliedChains) {
    let mut current: AppliedChains = HashMap::new();
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for line in full.lines() {
        if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split(' ').next().unwrap_or_default();
            if is_service_chain(chain) {
                let rules = current.entry(chain.to_string()).or_default();
                rules.push_str(line);
                rules.push('\n');
            }
        } else if let Some(c) = line.strip_prefix(":") {
            let chain = c.split(' ').next().unwrap_or_default();
            if is_service_chain(chain) {
                current.entry(chain.to_string()).or_default();
            }
        } else if let Some(c) = line.strip_prefix("-X ") {
            deleted.insert(c.trim());
        }
    }
    for c in &deleted {
        current.remove(*c);
    }
    let Some(applied) = applied else {
        return (full.to_string(), current);
    };
    let unchanged = |chain: &str| {
        !deleted.contains(chain)
            && applied
                .get(chain)
                .is_some_and(|r| current.get(chain) == Some(r))
    };
    let mut out = String::with_capacity(full.len());
    for line in full.lines() {
        let chain = line
            .strip_prefix("-A ")
            .or_else(|| line.strip_prefix(":"))
            .map(|r| r.split(' ').next().unwrap_or_default());
        if chain.is_some_and(unchanged) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, current)
}

/// `iptables-restore --noflush` of the rendered rules.
pub fn apply(rules: &str) -> Result<(), String> {
    crate::feed(
        "iptables-restore",
        &["-w", "--noflush", "--counters"],
        rules,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_match_upstream_hash_shape() {
        // base32 of sha256, 16 characters from the standard alphabet.
        let h = hash16("default/web:httptcp");
        assert_eq!(h.len(), 16);
        assert!(h.chars().all(|c| BASE32.contains(&(c as u8))));
        assert_eq!(probability(0, 3), "0.3333333333");
        assert_eq!(probability(1, 3), "0.5000000000");
    }

    #[test]
    fn partial_sync_skips_unchanged_service_chains() {
        let full = "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n\
            :KUBE-SVC-A - [0:0]\n:KUBE-SEP-A1 - [0:0]\n:KUBE-SVC-B - [0:0]\n:KUBE-SVC-OLD - [0:0]\n\
            -A KUBE-SERVICES -d 10.0.0.1/32 -j KUBE-SVC-A\n-A KUBE-SVC-A -j KUBE-SEP-A1\n\
            -A KUBE-SEP-A1 -j DNAT --to-destination 10.244.0.2:80\n-A KUBE-SVC-B -j DROP\n\
            -X KUBE-SVC-OLD\nCOMMIT\n";
        let (whole, applied) = minimize(full, None);
        assert_eq!(whole, full);
        assert_eq!(applied.len(), 3, "{applied:?}");
        // B changed since: only B (and the shared chains) are written.
        let mut before = applied.clone();
        before.insert("KUBE-SVC-B".into(), "-A KUBE-SVC-B -j KUBE-SEP-B1\n".into());
        let (partial, after) = minimize(full, Some(&before));
        assert!(
            !partial.contains("KUBE-SVC-A ") && !partial.contains("KUBE-SEP-A1"),
            "{partial}"
        );
        assert!(
            partial.contains(":KUBE-SVC-B - [0:0]\n") && partial.contains("-A KUBE-SVC-B -j DROP")
        );
        assert!(partial.contains("-A KUBE-SERVICES -d 10.0.0.1/32 -j KUBE-SVC-A"));
        assert!(partial.contains(":KUBE-SVC-OLD - [0:0]\n") && partial.contains("-X KUBE-SVC-OLD"));
        assert_eq!(after, applied);
    }
}
