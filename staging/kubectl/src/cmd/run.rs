//! `kubectl run`, `kubectl expose` and `kubectl autoscale`: objects built from flags.
//! Upstream twins: `kubectl/pkg/cmd/run/run.go`, `kubectl/pkg/cmd/expose/expose.go`,
//! `kubectl/pkg/cmd/autoscale/autoscale.go`.

use super::apply::{DryRun, dry_run_mode};
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Map, Value, json};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub name: String,
    /// The image for the container to run.
    #[arg(long)]
    pub image: Option<String>,
    /// Comma separated labels to apply to the pod. Will override previous values.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Environment variables to set in the container.
    #[arg(long)]
    pub env: Vec<String>,
    /// The port that this container exposes.
    #[arg(long)]
    pub port: Option<i64>,
    /// The restart policy for this Pod.  Legal values [Always, OnFailure, Never].
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// If true and extra arguments are present, use them as the 'command' field in the container, rather than the 'args' field which is the default.
    #[arg(long)]
    pub command: bool,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
    /// Arguments after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExposeArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub resources: Vec<String>,
    /// The port that the service should serve on.
    #[arg(long)]
    pub port: Option<String>,
    /// Name or number for the port on the container that the service should direct traffic to.
    #[arg(long = "target-port")]
    pub target_port: Option<String>,
    /// The network protocol for the service to be created. Default is 'TCP'.
    #[arg(long)]
    pub protocol: Option<String>,
    /// The name for the newly created object.
    #[arg(long)]
    pub name: Option<String>,
    /// Type for this service: ClusterIP, NodePort, LoadBalancer, or ExternalName.
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

#[derive(clap::Args, Debug)]
pub struct AutoscaleArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub resources: Vec<String>,
    /// The lower limit for the number of pods that can be set by the autoscaler.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub min: i64,
    /// The upper limit for the number of pods that can be set by the autoscaler. Required.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub max: i64,
    /// The target average CPU utilization (represented as a percent of requested CPU) over all the pods.
    #[arg(long = "cpu-percent", default_value_t = -1, allow_negative_numbers = true)]
    pub cpu_percent: i64,
    /// The name for the newly created object.
    #[arg(long)]
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

/// Creates what a generator made, as `manager`, and reports it as upstream does.
/// `typed_client`: upstream creates it through a typed clientset (protobuf), not the
/// dynamic client (JSON).
async fn create_and_report(
    f: &mut Factory,
    typed_client: bool,
    manager: &str,
    obj: Value,
    verb: &str,
    output_flag: &Option<String>,
    dry: DryRun,
) -> CmdResult {
    let format = OutputFormat::from_flag(output_flag.as_deref())?;
    let r = f.mapping_for_object(&obj).await?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut obj = obj;
    if r.namespaced && dry != DryRun::Client {
        obj["metadata"]["namespace"] = json!(namespace);
    }
    let created = match dry {
        DryRun::Client => obj,
        _ => {
            let q = if dry == DryRun::Server {
                format!("?fieldManager={manager}&dryRun=All")
            } else {
                format!("?fieldManager={manager}")
            };
            let path = format!("{}{q}", r.collection_path(Some(&namespace)));
            if typed_client {
                client.typed_send(http::Method::POST, &path, &obj).await?
            } else {
                client
                    .send_json(http::Method::POST, &path, client::JSON, &obj)
                    .await?
            }
        }
    };
    match format {
        Some(fmt) => util::print_object(&created, &fmt, false),
        None => {
            output::print(&format!(
                "{} {verb}{}\n",
                cli_runtime::printers::name_line(&created),
                dry.suffix()
            ));
            Ok(())
        }
    }
}

fn parse_labels(s: &str) -> Result<Map<String, Value>, CmdError> {
    let mut m = Map::new();
    for kv in s.split(',').filter(|x| !x.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CmdError::msg(format!("invalid label spec: {kv}")))?;
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

pub async fn run(f: &mut Factory, a: RunArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let Some(image) = &a.image else {
        return Err(CmdError::msg("--image is required"));
    };
    let restart = match a.restart.as_str() {
        "Always" | "OnFailure" | "Never" => a.restart.clone(),
        r => return Err(CmdError::msg(format!("invalid restart policy: {r}"))),
    };
    let labels = match &a.labels {
        Some(l) => parse_labels(l)?,
        None => {
            let mut m = Map::new();
            m.insert("run".into(), json!(a.name));
            m
        }
    };
    let mut c = json!({"name": a.name, "image": image, "resources": {}});
    if !a.env.is_empty() {
        let env: Vec<Value> = a
            .env
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                json!({"name": k, "value": v})
            })
            .collect();
        c["env"] = json!(env);
    }
    if let Some(p) = a.port {
        c["ports"] = json!([{"containerPort": p}]);
    }
    if !a.args.is_empty() {
        c[if a.command { "command" } else { "args" }] = json!(a.args);
    }
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": a.name, "labels": labels},
        "spec": {"containers": [c], "dnsPolicy": "ClusterFirst", "restartPolicy": restart},
        "status": {},
    });
    create_and_report(
        f,
        false,
        &a.field_manager.query("kubectl-run"),
        pod,
        "created",
        &a.output,
        dry,
    )
    .await
}

pub async fn expose(f: &mut Factory, a: ExposeArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let selections = f.selections(&a.resources).await?;
    let Some((r, name)) = selections
        .iter()
        .find_map(|s| s.names.first().map(|n| (s.resource.clone(), n.clone())))
    else {
        return Err(CmdError::msg(
            "You must provide one or more resources by argument or filename.",
        ));
    };
    let obj = client
        .get_json(&r.object_path(Some(&namespace), &name), client::JSON)
        .await?;
    let selector: Value = match r.kind.as_str() {
        "Service" | "ReplicationController" => obj["spec"]["selector"].clone(),
        "Pod" => obj["metadata"]["labels"].clone(),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if obj["spec"]["selector"]["matchExpressions"].is_array() {
                return Err(CmdError::msg(format!(
                    "couldn't convert expressions - \"{}\" to map-based selector format",
                    cli_runtime::printers::to_compact_json(
                        &obj["spec"]["selector"]["matchExpressions"]
                    )
                )));
            }
            obj["spec"]["selector"]["matchLabels"].clone()
        }
        k => return Err(CmdError::msg(format!("cannot expose a {k}"))),
    };
    let port: String = match &a.port {
        Some(p) => p.clone(),
        None => {
            let first = obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .or(obj["spec"]["containers"].as_array())
                .and_then(|cs| {
                    cs.iter()
                        .find_map(|c| c["ports"][0]["containerPort"].as_i64())
                })
                .or_else(|| obj["spec"]["ports"][0]["port"].as_i64());
            match first {
                Some(p) => p.to_string(),
                None => {
                    return Err(CmdError::msg(
                        "couldn't find port via --port flag or introspection",
                    ));
                }
            }
        }
    };
    let port_num: i64 = port
        .parse()
        .map_err(|_| CmdError::msg(format!("invalid port {port}")))?;
    let target: Value = match &a.target_port {
        Some(t) => t.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(t)),
        None => json!(port_num),
    };
    let svc_name = a.name.clone().unwrap_or(name.clone());
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": svc_name, "labels": obj["metadata"]["labels"]},
        "spec": {"ports": [{"port": port_num, "protocol": a.protocol.clone().unwrap_or("TCP".into()), "targetPort": target}],
                 "selector": selector},
        "status": {"loadBalancer": {}},
    });
    if let Some(t) = &a.service_type {
        svc["spec"]["type"] = json!(t);
    }
    create_and_report(
        f,
        false,
        &a.field_manager.query("kubectl-expose"),
        svc,
        "exposed",
        &a.output,
        dry,
    )
    .await
}

pub async fn autoscale(f: &mut Factory, a: AutoscaleArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    if a.max < 1 {
        return Err(CmdError::msg(
            "--max=MAXPODS is required and must be at least 1, max: -1",
        ));
    }
    if a.min > a.max {
        return Err(CmdError::msg(format!(
            "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
            a.max, a.min
        )));
    }
    let selections = f.selections(&a.resources).await?;
    let Some((r, name)) = selections
        .iter()
        .find_map(|s| s.names.first().map(|n| (s.resource.clone(), n.clone())))
    else {
        return Err(CmdError::msg(
            "You must provide one or more resources by argument or filename.",
        ));
    };
    if !matches!(
        r.kind.as_str(),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
    ) {
        return Err(CmdError::msg(format!(
            "cannot autoscale a {}: cannot autoscale a {}",
            r.kind, r.kind
        )));
    }
    let mut spec = json!({
        "scaleTargetRef": {"apiVersion": r.api_version(), "kind": r.kind, "name": name},
        "maxReplicas": a.max,
    });
    if a.min > 0 {
        spec["minReplicas"] = json!(a.min);
    }
    if a.cpu_percent >= 0 {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": a.cpu_percent}}}]);
    }
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": a.name.clone().unwrap_or(name.clone())},
        "spec": spec, "status": {"currentMetrics": null, "desiredReplicas": 0},
    });
    create_and_report(
        f,
        true,
        &a.field_manager.query("kubectl-autoscale"),
        hpa,
        "autoscaled",
        &a.output,
        dry,
    )
    .await
}
