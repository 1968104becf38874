//! `kubectl create -f` and the generators (`create namespace|configmap|secret
//! generic|deployment|serviceaccount`). Upstream twin: `kubectl/pkg/cmd/create`.

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
        let mut path = r.collection_path(Some(&ns));
        if dry == super::apply::DryRun::Server {
            path.push_str("?dryRun=All");
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
    while let Some(a) = it.next() {
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
    let (sub, name) = if kind == "secret" {
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
        _ => {
            return Err(CmdError::plain(format!(
                "error: unknown command \"{kind}\" for \"kubectl create\""
            )));
        }
    })
}
