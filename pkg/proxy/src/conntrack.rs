//! UDP conntrack cleanup (upstream `pkg/proxy/conntrack/cleanup.go`): UDP has no
//! connection end, so a flow keeps going to the endpoint it was NATed to. After a sync,
//! entries towards endpoints that went away are deleted, and so are entries of services
//! that just got their first endpoint (they may hold a cached REJECT). Runs the
//! `conntrack` tool when it is installed.

use crate::servicechange::{ServiceMap, usable};
use std::collections::BTreeSet;

/// The `conntrack` argument lists that clear what `prev` -> `cur` left stale.
pub fn stale_udp(prev: &ServiceMap, cur: &ServiceMap) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let del = |extra: &[&str]| {
        let mut v: Vec<String> = ["-D", "-p", "udp"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for (key, (sp, eps)) in cur {
        if sp.protocol != "UDP" {
            continue;
        }
        let now: BTreeSet<String> = usable(eps, None).iter().map(|e| e.ip.clone()).collect();
        let before: BTreeSet<String> = prev
            .get(key)
            .map(|(_, e)| usable(e, None).iter().map(|e| e.ip.clone()).collect())
            .unwrap_or_default();
        if before.is_empty() && !now.is_empty() {
            for ip in &sp.cluster_ips {
                out.push(del(&["--orig-dst", ip]));
            }
            if sp.node_port > 0 {
                out.push(del(&["--dport", &sp.node_port.to_string()]));
            }
        }
        for gone in before.difference(&now) {
            for ip in &sp.cluster_ips {
                out.push(del(&["--orig-dst", ip, "--dst-nat", gone]));
            }
            if sp.node_port > 0 {
                out.push(del(&[
                    "--dport",
                    &sp.node_port.to_string(),
                    "--dst-nat",
                    gone,
                ]));
            }
        }
    }
    for (key, (sp, _)) in prev {
        if sp.protocol == "UDP" && !cur.contains_key(key) {
            for ip in &sp.cluster_ips {
                out.push(del(&["--orig-dst", ip]));
            }
        }
    }
    out
}

/// Runs the deletions (a missing tool or "0 flow entries" is not an error).
pub fn clear(cmds: &[Vec<String>]) {
    for args in cmds {
        match std::process::Command::new("conntrack").args(args).output() {
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "conntrack not available; stale UDP flows are not cleared");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servicechange::{Endpoint, ServicePort};

    fn port(protocol: &str) -> ServicePort {
        ServicePort {
            name: "default/dns:dns".into(),
            protocol: protocol.into(),
            cluster_ips: vec!["10.0.0.10".into()],
            port: 53,
            node_port: 0,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_seconds: None,
            internal_local: false,
            external_local: false,
        }
    }

    fn ep(ip: &str) -> Endpoint {
        Endpoint {
            ip: ip.into(),
            port: 53,
            ready: true,
            serving: true,
            terminating: false,
            node: None,
        }
    }

    #[test]
    fn removed_endpoints_and_first_endpoints_are_cleared() {
        let mut prev = ServiceMap::new();
        prev.insert(
            "k".into(),
            (port("UDP"), vec![ep("10.244.0.5"), ep("10.244.0.6")]),
        );
        let mut cur = ServiceMap::new();
        cur.insert("k".into(), (port("UDP"), vec![ep("10.244.0.6")]));
        let cmds = stale_udp(&prev, &cur);
        assert_eq!(
            cmds,
            vec![vec![
                "-D",
                "-p",
                "udp",
                "--orig-dst",
                "10.0.0.10",
                "--dst-nat",
                "10.244.0.5"
            ]]
        );
        // From no endpoints to one: cached rejections go.
        let mut empty = ServiceMap::new();
        empty.insert("k".into(), (port("UDP"), vec![]));
        assert_eq!(
            stale_udp(&empty, &cur),
            vec![vec!["-D", "-p", "udp", "--orig-dst", "10.0.0.10"]]
        );
        // TCP needs nothing.
        let mut tcp_prev = ServiceMap::new();
        tcp_prev.insert("k".into(), (port("TCP"), vec![ep("10.244.0.5")]));
        let mut tcp_cur = ServiceMap::new();
        tcp_cur.insert("k".into(), (port("TCP"), vec![]));
        assert!(stale_udp(&tcp_prev, &tcp_cur).is_empty());
    }
}
