//! The pure decisions of the network add-on: which routes a node should have, what its
//! CNI configuration says, and what to change to get from the current routes there.

use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;

/// The route protocol number marking the routes this add-on owns.
pub const PROTO: &str = "201";

fn internal_ip(n: &Node) -> Option<String> {
    n.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP" && !a.address.contains(':'))
        .map(|a| a.address.clone())
}

/// pod CIDR -> gateway (the node's InternalIP) for every node but `me` that has both.
pub fn desired_routes(nodes: &[&Node], me: &str) -> BTreeMap<String, String> {
    nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(me))
        .filter_map(|n| {
            let cidr = n.spec.as_ref()?.pod_cidr.clone()?;
            (!cidr.contains(':')).then_some(())?;
            Some((cidr, internal_ip(n)?))
        })
        .collect()
}

/// The node's CNI network: a bridge with `host-local` addresses from its pod CIDR and a
/// default route through the bridge, port mappings, and the loopback.
pub fn cni_config(pod_cidr: &str, bridge: &str) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "cluster-network",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"},
        ]
    })
}

/// From `ip route show proto 201` output to the routes to add or replace and those to
/// remove.
pub fn route_changes(
    desired: &BTreeMap<String, String>,
    current: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut have = BTreeMap::new();
    for line in current.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let (Some(cidr), Some(i)) = (f.first(), f.iter().position(|w| *w == "via")) {
            have.insert(cidr.to_string(), f.get(i + 1).unwrap_or(&"").to_string());
        }
    }
    let add = desired
        .iter()
        .filter(|(c, v)| have.get(*c) != Some(*v))
        .map(|(c, v)| (c.clone(), v.clone()))
        .collect();
    let remove = have
        .keys()
        .filter(|c| !desired.contains_key(*c))
        .cloned()
        .collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": ip.map(|i| vec![json!({"type": "Hostname", "address": name}), json!({"type": "InternalIP", "address": i})]).unwrap_or_default()}}))
        .unwrap()
    }

    #[test]
    fn routes_to_every_other_node_with_a_cidr_and_an_address() {
        let nodes = [
            node("a", Some("10.244.0.0/24"), Some("10.0.0.1")),
            node("b", Some("10.244.1.0/24"), Some("10.0.0.2")),
            node("c", None, Some("10.0.0.3")),
            node("d", Some("10.244.3.0/24"), None),
        ];
        let refs: Vec<&Node> = nodes.iter().collect();
        let want = desired_routes(&refs, "a");
        assert_eq!(
            want,
            BTreeMap::from([("10.244.1.0/24".to_string(), "10.0.0.2".to_string())])
        );
    }

    #[test]
    fn changes_add_moved_and_new_routes_and_remove_gone_ones() {
        let desired = BTreeMap::from([
            ("10.244.1.0/24".to_string(), "10.0.0.2".to_string()),
            ("10.244.2.0/24".to_string(), "10.0.0.9".to_string()),
            ("10.244.4.0/24".to_string(), "10.0.0.4".to_string()),
        ]);
        let current = "10.244.1.0/24 via 10.0.0.2 dev eth0 proto 201 \n10.244.2.0/24 via 10.0.0.3 dev eth0 proto 201 \n10.244.5.0/24 via 10.0.0.5 dev eth0 proto 201 \n";
        let (add, remove) = route_changes(&desired, current);
        assert_eq!(
            add,
            vec![
                ("10.244.2.0/24".to_string(), "10.0.0.9".to_string()),
                ("10.244.4.0/24".to_string(), "10.0.0.4".to_string())
            ]
        );
        assert_eq!(remove, vec!["10.244.5.0/24".to_string()]);
    }

    #[test]
    fn cni_config_uses_the_pod_cidr() {
        let c = cni_config("10.244.7.0/24", "cni0");
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.7.0/24"
        );
        assert_eq!(c["plugins"][0]["bridge"], "cni0");
    }
}
