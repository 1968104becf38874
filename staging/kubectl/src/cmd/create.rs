//! `kubectl create -f` and the generators (`create namespace|configmap|secret
//! generic|deployment|serviceaccount|service|job|cronjob|rolebinding|clusterrolebinding|
//! quota|priorityclass|poddisruptionbudget`). Upstream twin: `kubectl/pkg/cmd/create`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Filename, directory, or URL to files to use to create the resource
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format. One of: (json, yaml, name, jsonpath, custom-columns).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
    /// A generator: namespace NAME, configmap NAME --from-literal=k=v, secret generic NAME, deployment NAME --image=I, serviceaccount NAME
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub generator: Vec<String>,
}

pub async fn run(f: &mut Factory, a: CreateArgs) -> CmdResult {
    let dry = super::apply::dry_run_mode(&a.dry_run)?;
    let format = a
        .output
        .as_deref()
        .map(|o| OutputFormat::parse(Some(o)))
        .transpose()?;
    let objects: Vec<(String, Value)> = if !a.generator.is_empty() {
        vec![("".to_string(), generate(&a.generator)?)]
    } else if !a.filenames.is_empty() {
        cli_runtime::resource::read_files(&a.filenames, a.recursive)
            .map_err(CmdError::msg)?
            .into_iter()
            .map(|o| (o.source, o.object))
            .collect()
    } else {
        return Err(CmdError::plain(
            "error: must specify one of -f and -k\n\nSee 'kubectl create -h' for help and examples",
        ));
    };
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    let mut errors = Vec::new();
    for (source, mut obj) in objects {
        let r = f.mapping_for_object(&obj).await?;
        let ns = match obj["metadata"]["namespace"].as_str() {
            Some(n) if explicit && n != namespace && r.namespaced => {
                return Err(CmdError::msg(format!(
                    "the namespace from the provided object \"{n}\" does not match the namespace \"{namespace}\". You must pass '--namespace={n}' to perform this operation."
                )));
            }
            Some(n) => n.to_string(),
            None => namespace.clone(),
        };
        if r.namespaced && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!(ns);
        }
        let mut path = format!(
            "{}?fieldManager=kubectl-create",
            r.collection_path(Some(&ns))
        );
        if dry == super::apply::DryRun::Server {
            path.push_str("&dryRun=All");
        }
        let created = if dry == super::apply::DryRun::Client {
            Ok(obj.clone())
        } else {
            client
                .send_json(http::Method::POST, &path, client::JSON, &obj)
                .await
        };
        match created {
            Ok(v) => match &format {
                Some(fmt) => util::print_object(&v, fmt, false)?,
                None => output::print(&format!(
                    "{} created{}\n",
                    cli_runtime::printers::name_line(&v),
                    dry.suffix()
                )),
            },
            Err(e) => {
                // Each generator words its failure its own way upstream.
                let msg = if source.is_empty() {
                    match r.kind.as_str() {
                        "Namespace" => e.message(),
                        "Secret" => {
                            format!("error: failed to create secret {}", e.server_message())
                        }
                        kind => format!(
                            "error: failed to create {}: {}",
                            kind.to_lowercase(),
                            e.server_message()
                        ),
                    }
                } else {
                    match &e {
                        client::Error::Status {
                            reason, message, ..
                        } => {
                            format!(
                                "Error from server ({reason}): error when creating \"{source}\": {message}"
                            )
                        }
                        other => other.message(),
                    }
                };
                errors.push(msg);
            }
        }
    }
    crate::error::from_messages(errors)
}

// The imperative generators kubectl users type most.
fn generate(args: &[String]) -> Result<Value, CmdError> {
    let kind = args[0].as_str();
    let mut positional = Vec::new();
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut it = args[1..].iter().peekable();
    let mut command: Vec<String> = Vec::new();
    while let Some(a) = it.next() {
        if a == "--" {
            command = it.by_ref().cloned().collect();
            break;
        }
        if let Some(flag) = a.strip_prefix("--") {
            match flag.split_once('=') {
                Some((k, v)) => flags.push((k.to_string(), v.to_string())),
                None => {
                    let v = it.next().cloned().unwrap_or_default();
                    flags.push((flag.to_string(), v));
                }
            }
        } else {
            positional.push(a.clone());
        }
    }
    let flag_all = |k: &str| -> Vec<String> {
        flags
            .iter()
            .filter(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let literals = |k: &str| -> Result<serde_json::Map<String, Value>, CmdError> {
        let mut m = serde_json::Map::new();
        for l in flag_all(k) {
            let (key, v) = l.split_once('=').ok_or_else(|| {
                CmdError::msg(format!("invalid literal source {l}, expected key=value"))
            })?;
            m.insert(key.to_string(), json!(v));
        }
        Ok(m)
    };
    let known = |allowed: &[&str]| -> Result<(), CmdError> {
        match flags.iter().find(|(f, _)| !allowed.contains(&f.as_str())) {
            Some((f, _)) => Err(CmdError::plain(format!(
                "error: unknown flag: --{f}\nSee 'kubectl create {kind} --help' for usage."
            ))),
            None => Ok(()),
        }
    };
    let one = |k: &str| flag_all(k).pop();
    let (sub, name) = if matches!(kind, "secret" | "service" | "svc") {
        (
            positional.first().cloned().unwrap_or_default(),
            positional.get(1).cloned(),
        )
    } else {
        (String::new(), positional.first().cloned())
    };
    let name = name.ok_or_else(|| CmdError::msg("exactly one NAME is required, got 0"))?;
    Ok(match (kind, sub.as_str()) {
        ("namespace" | "ns", _) => {
            known(&[])?;
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        }
        ("serviceaccount" | "sa", _) => {
            known(&[])?;
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        }
        ("configmap" | "cm", _) => {
            known(&["from-literal"])?;
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": literals("from-literal")?})
        }
        ("secret", "generic") => {
            known(&["from-literal", "type"])?;
            use base64::Engine;
            let data: serde_json::Map<String, Value> = literals("from-literal")?
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        json!(
                            base64::engine::general_purpose::STANDARD
                                .encode(v.as_str().unwrap_or_default())
                        ),
                    )
                })
                .collect();
            let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
            if let Some(t) = flag_all("type").pop() {
                s["type"] = json!(t);
            }
            s
        }
        ("deployment" | "deploy", _) => {
            known(&["image", "replicas", "port"])?;
            let images = flag_all("image");
            if images.is_empty() {
                return Err(CmdError::plain("error: required flag(s) \"image\" not set"));
            }
            let replicas: i64 = flag_all("replicas")
                .pop()
                .and_then(|r| r.parse().ok())
                .unwrap_or(1);
            let containers: Vec<Value> = images
                .iter()
                .map(|img| {
                    let base = img.rsplit('/').next().unwrap_or(img);
                    let cname = base.split([':', '@']).next().unwrap_or(base);
                    let mut c = json!({"name": cname, "image": img, "resources": {}});
                    if let Some(p) = flag_all("port").pop().and_then(|p| p.parse::<i64>().ok()) {
                        c["ports"] = json!([{"containerPort": p}]);
                    }
                    c
                })
                .collect();
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": name, "labels": {"app": name}},
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                            "strategy": {},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": containers}}},
                   "status": {}})
        }
        ("service" | "svc", ty @ ("clusterip" | "nodeport" | "loadbalancer" | "externalname")) => {
            known(&["tcp", "clusterip", "node-port", "external-name"])?;
            let service_type = match ty {
                "clusterip" => "ClusterIP",
                "nodeport" => "NodePort",
                "loadbalancer" => "LoadBalancer",
                _ => "ExternalName",
            };
            let mut ports = Vec::new();
            for spec in flag_all("tcp")
                .iter()
                .flat_map(|t| t.split(','))
                .filter(|t| !t.is_empty())
            {
                let (port, target) = spec.split_once(':').unwrap_or((spec, spec));
                let port_n: i64 = port.parse().map_err(|_| {
                    CmdError::msg(format!("strconv.Atoi: parsing {port:?}: invalid syntax"))
                })?;
                let target_v = target
                    .parse::<i64>()
                    .map(|t| json!(t))
                    .unwrap_or_else(|_| json!(target));
                let mut p = json!({"name": spec.replace(':', "-"), "port": port_n, "protocol": "TCP", "targetPort": target_v});
                if ty == "nodeport"
                    && let Some(n) = one("node-port")
                        .and_then(|n| n.parse::<i64>().ok())
                        .filter(|n| *n > 0)
                {
                    p["nodePort"] = json!(n);
                }
                ports.push(p);
            }
            if ty != "externalname"
                && ports.is_empty()
                && one("clusterip").as_deref() != Some("None")
            {
                return Err(CmdError::msg(
                    "at least one tcp port specifier must be provided",
                ));
            }
            let mut spec = json!({"type": service_type});
            if !ports.is_empty() {
                spec["ports"] = json!(ports);
            }
            if ty == "externalname" {
                let ext = one("external-name").unwrap_or_default();
                if ext.is_empty() {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"external-name\" not set",
                    ));
                }
                spec["externalName"] = json!(ext);
            }
            spec["selector"] = json!({"app": name});
            if let Some(ip) = one("clusterip").filter(|ip| !ip.is_empty()) {
                spec["clusterIP"] = json!(ip);
            }
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "labels": {"app": name}},
                   "spec": spec, "status": {"loadBalancer": {}}})
        }
        ("job", _) | ("cronjob" | "cj", _) => {
            let cron = kind != "job";
            if cron {
                known(&["image", "schedule", "restart"])?;
            } else {
                known(&["image", "restart", "from"])?;
            }
            if one("from").is_some() {
                return Err(CmdError::msg(
                    "create job --from is not supported by this kubectl yet",
                ));
            }
            let image = one("image").unwrap_or_default();
            if image.is_empty() && cron {
                return Err(CmdError::plain("error: required flag(s) \"image\" not set"));
            }
            if image.is_empty() {
                return Err(CmdError::msg("either --image or --from must be specified"));
            }
            // Arguments after the name are the command too (`create job x --image=i date`).
            command.splice(0..0, positional.iter().skip(1).cloned());
            let restart = one("restart").unwrap_or_else(|| {
                if cron {
                    "OnFailure".into()
                } else {
                    "Never".into()
                }
            });
            if restart != "OnFailure" && restart != "Never" {
                return Err(CmdError::msg(format!("restart {restart} not supported")));
            }
            let mut container = json!({"name": name, "image": image, "resources": {}});
            if !command.is_empty() {
                container["command"] = json!(command);
            }
            let job_spec = json!({"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": restart}}});
            if cron {
                let schedule = one("schedule").unwrap_or_default();
                if schedule.is_empty() {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"schedule\" not set",
                    ));
                }
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                       "spec": {"jobTemplate": {"metadata": {"name": name}, "spec": job_spec}, "schedule": schedule},
                       "status": {}})
            } else {
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": job_spec, "status": {}})
            }
        }
        ("rolebinding" | "clusterrolebinding", _) => {
            let cluster = kind == "clusterrolebinding";
            if cluster {
                known(&["clusterrole", "user", "group", "serviceaccount"])?;
            } else {
                known(&["clusterrole", "role", "user", "group", "serviceaccount"])?;
            }
            let (ref_kind, role) = match (one("role"), one("clusterrole")) {
                (Some(_), Some(_)) => {
                    return Err(CmdError::msg(
                        "exactly one of clusterrole or role must be specified",
                    ));
                }
                (Some(r), None) => ("Role", r),
                (None, Some(r)) => ("ClusterRole", r),
                (None, None) if cluster => {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"clusterrole\" not set",
                    ));
                }
                (None, None) => {
                    return Err(CmdError::msg(
                        "exactly one of clusterrole or role must be specified",
                    ));
                }
            };
            let group = "rbac.authorization.k8s.io";
            let mut subjects = Vec::new();
            for u in flag_all("user") {
                subjects.push(json!({"apiGroup": group, "kind": "User", "name": u}));
            }
            for g in flag_all("group") {
                subjects.push(json!({"apiGroup": group, "kind": "Group", "name": g}));
            }
            for sa in flag_all("serviceaccount") {
                let Some((ns, n)) = sa
                    .split_once(':')
                    .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
                else {
                    return Err(CmdError::msg("serviceaccount must be <namespace>:<name>"));
                };
                subjects.push(json!({"kind": "ServiceAccount", "namespace": ns, "name": n}));
            }
            let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": if cluster { "ClusterRoleBinding" } else { "RoleBinding" },
                "metadata": {"name": name}, "roleRef": {"apiGroup": group, "kind": ref_kind, "name": role}});
            if !subjects.is_empty() {
                b["subjects"] = json!(subjects);
            }
            b
        }
        ("quota" | "resourcequota", _) => {
            known(&["hard", "scopes"])?;
            let mut spec = json!({});
            let hard: serde_json::Map<String, Value> = flag_all("hard")
                .iter()
                .flat_map(|h| h.split(','))
                .filter(|h| !h.is_empty())
                .map(|h| {
                    h.split_once('=')
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .ok_or_else(|| {
                            CmdError::msg(format!("invalid resource quota hard entry {h:?}"))
                        })
                })
                .collect::<Result<_, _>>()?;
            if !hard.is_empty() {
                spec["hard"] = Value::Object(hard);
            }
            let scopes: Vec<String> = flag_all("scopes")
                .iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !scopes.is_empty() {
                spec["scopes"] = json!(scopes);
            }
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": spec, "status": {}})
        }
        ("priorityclass" | "pc", _) => {
            known(&[
                "value",
                "global-default",
                "description",
                "preemption-policy",
            ])?;
            let value: i64 = one("value")
                .unwrap_or_else(|| "0".into())
                .parse()
                .map_err(|_| CmdError::msg("invalid argument for --value"))?;
            let mut pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "preemptionPolicy": one("preemption-policy").unwrap_or_else(|| "PreemptLowerPriority".into())});
            if let Some(d) = one("description").filter(|d| !d.is_empty()) {
                pc["description"] = json!(d);
            }
            pc["globalDefault"] =
                json!(one("global-default").is_some_and(|g| g == "true" || g.is_empty()));
            pc
        }
        ("poddisruptionbudget" | "pdb", _) => {
            known(&["selector", "min-available", "max-unavailable"])?;
            let sel = one("selector").unwrap_or_default();
            if sel.is_empty() {
                return Err(CmdError::msg("a selector must be specified"));
            }
            let (min, max) = (one("min-available"), one("max-unavailable"));
            if min.is_some() == max.is_some() {
                return Err(CmdError::msg(
                    "one of min-available or max-unavailable must be specified",
                ));
            }
            let int_or_string = |v: &str| {
                v.parse::<i64>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(v))
            };
            let labels: serde_json::Map<String, Value> = sel
                .split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.trim_end_matches('=').to_string(), json!(v)))
                })
                .collect();
            let mut spec = json!({"selector": {"matchLabels": labels}});
            if let Some(m) = min {
                spec["minAvailable"] = int_or_string(&m);
            }
            if let Some(m) = max {
                spec["maxUnavailable"] = int_or_string(&m);
            }
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}, "spec": spec,
                   "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}})
        }
        _ => {
            return Err(CmdError::plain(format!(
                "error: unknown command \"{kind}\" for \"kubectl create\""
            )));
        }
    })
}
