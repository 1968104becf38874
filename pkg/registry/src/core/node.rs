//! Nodes (upstream `pkg/registry/core/node`; stored under `minions` as upstream).

use crate::typed::{Typed, info};
use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

fn ready_status(o: &Value) -> String {
    let conds = o["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut status = match conds.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn roles(o: &Value) -> String {
    let mut roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(String::from)
                        .or_else(|| {
                            (k == "kubernetes.io/role")
                                .then(|| v.as_str().unwrap_or_default().to_string())
                        })
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn address(o: &Value, kind: &str) -> Value {
    o["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == kind))
        .map(|x| x["address"].clone())
        .unwrap_or(json!("<none>"))
}

pub fn strategy() -> Typed<Node> {
    let mut i = info("", "v1", "Node", "nodes", false, "minions");
    i.short_names = vec!["no".into()];
    i.subresources = vec!["proxy".into(), "status".into()];
    let mut t = Typed::new(i);
    // Upstream `SetDefaults_NodeStatus`: what is not reserved is allocatable.
    t.default = |n: &mut Node| {
        if let Some(st) = n.status.as_mut()
            && st.allocatable.is_none()
        {
            st.allocatable = st.capacity.clone();
        }
    };
    // Upstream `ValidateNodeUpdate`: pod CIDRs are set once, by node IPAM or the
    // kubelet, and never moved (routes and CNI configurations depend on them).
    t.validate_update = |n, o| {
        let cidrs = |x: &Node| {
            x.spec
                .as_ref()
                .and_then(|s| s.pod_cidrs.clone())
                .unwrap_or_default()
        };
        let (old, new) = (cidrs(o), cidrs(n));
        if !old.is_empty() && old != new {
            return vec![apimachinery::errors::Cause::forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            )];
        }
        Vec::new()
    };
    t.fields = |o| {
        [(
            "spec.unschedulable".to_string(),
            o["spec"]["unschedulable"]
                .as_bool()
                .unwrap_or(false)
                .to_string(),
        )]
        .into_iter()
        .collect()
    };
    t.supported_fields = &["spec.unschedulable"];
    t.columns = Some(|| {
        vec![
            crate::typed::col("Status", "string", "The status of the node", 0),
            crate::typed::col("Roles", "string", "The roles of the node", 0),
            crate::typed::col("Age", "string", "", 0),
            crate::typed::col(
                "Version",
                "string",
                "Kubelet Version reported by the node.",
                0,
            ),
            crate::typed::col(
                "Internal-IP",
                "string",
                "List of internal IPs in the node.",
                1,
            ),
            crate::typed::col(
                "External-IP",
                "string",
                "List of external IPs in the node.",
                1,
            ),
            crate::typed::col(
                "OS-Image",
                "string",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
                1,
            ),
            crate::typed::col(
                "Kernel-Version",
                "string",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                1,
            ),
            crate::typed::col(
                "Container-Runtime",
                "string",
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
                1,
            ),
        ]
    });
    t.row = |o| {
        let ni = &o["status"]["nodeInfo"];
        let or_unknown = |v: &Value| {
            if v.as_str().unwrap_or_default().is_empty() {
                json!("<unknown>")
            } else {
                v.clone()
            }
        };
        vec![
            json!(ready_status(o)),
            json!(roles(o)),
            crate::typed::age_cell(o),
            json!(ni["kubeletVersion"].as_str().unwrap_or_default()),
            address(o, "InternalIP"),
            address(o, "ExternalIP"),
            or_unknown(&ni["osImage"]),
            or_unknown(&ni["kernelVersion"]),
            or_unknown(&ni["containerRuntimeVersion"]),
        ]
    };
    t
}
