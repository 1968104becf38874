//! `kubeadm init phase mark-control-plane` (upstream `phases/markcontrolplane`): this
//! node labelled `node-role.kubernetes.io/control-plane` and
//! `node.kubernetes.io/exclude-from-external-load-balancers`, and tainted with
//! `nodeRegistration.taints` (default `node-role.kubernetes.io/control-plane:NoSchedule`).

use crate::app::apis::kubeadm::InitConfig;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

pub fn taints(cfg: &InitConfig) -> Vec<Value> {
    cfg.init
        .node_registration
        .taints
        .clone()
        .unwrap_or_else(|| vec![json!({"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"})])
}

pub async fn run(client: &kube::Client, cfg: &InitConfig, node: &str) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    // The kubelet registers the node; wait for it as upstream does.
    let deadline = Instant::now() + Duration::from_secs(240);
    let current = loop {
        match api.get(node).await {
            Ok(n) => break n,
            Err(e) if Instant::now() > deadline => {
                return Err(format!("error getting node {node:?}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    println!(
        "[mark-control-plane] Marking the node {node} as control-plane by adding the labels: [{CONTROL_PLANE_LABEL} {EXCLUDE_LB_LABEL}]"
    );
    let want = taints(cfg);
    let mut all: Vec<Value> = current
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect();
    for t in &want {
        if !all
            .iter()
            .any(|h| h["key"] == t["key"] && h["effect"] == t["effect"])
        {
            all.push(t.clone());
        }
    }
    if !want.is_empty() {
        let shown: Vec<String> = want
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap_or_default(),
                    t["effect"].as_str().unwrap_or_default()
                )
            })
            .collect();
        println!(
            "[mark-control-plane] Marking the node {node} as control-plane by adding the taints [{}]",
            shown.join(" ")
        );
    }
    let patch = json!({"metadata": {"labels": {CONTROL_PLANE_LABEL: "", EXCLUDE_LB_LABEL: ""}},
        "spec": {"taints": all}});
    api.patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("error patching node {node:?}: {e}"))
}
