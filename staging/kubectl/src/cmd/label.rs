//! `kubectl label` and `kubectl annotate`: `KEY=VALUE` sets, `KEY-` removes, existing
//! keys need `--overwrite`. Upstream twins: `kubectl/pkg/cmd/label/label.go`,
//! `kubectl/pkg/cmd/annotate/annotate.go`.

use super::apply::{DryRun, dry_run_mode};
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::merge;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::{ApiResource, query_escape};
use serde_json::{Map, Value, json};

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N, or TYPE/NAME KEY=VAL; KEY- removes a key
    pub args: Vec<String>,
    /// If true, allow labels (annotations) to be overwritten, otherwise reject updates that overwrite existing ones.
    #[arg(long)]
    pub overwrite: bool,
    /// Select all resources, in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
    /// If true, check the specified action in all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Filename, directory, or URL to files identifying the resource to update
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// If true, display the labels (annotations) for a given resource.
    #[arg(long)]
    pub list: bool,
    /// If non-empty, the update will only succeed if this is the current resource-version for the object.
    #[arg(long = "resource-version")]
    pub resource_version: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Labels => "labels",
            Field::Annotations => "annotations",
        }
    }
    fn manager(self) -> &'static str {
        match self {
            Field::Labels => "kubectl-label",
            Field::Annotations => "kubectl-annotate",
        }
    }
}

pub async fn run(f: &mut Factory, a: LabelArgs, field: Field) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let (resource_args, changes): (Vec<String>, Vec<String>) = a
        .args
        .iter()
        .cloned()
        .partition(|x| !(x.contains('=') || (x.ends_with('-') && !x.contains('/'))));
    let mut set: Vec<(String, String)> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    for c in &changes {
        if let Some(k) = c.strip_suffix('-')
            && !c.contains('=')
        {
            remove.push(k.to_string());
        } else if let Some((k, v)) = c.split_once('=') {
            if set.iter().any(|(x, _)| x == k) || remove.iter().any(|x| x == k) {
                return Err(CmdError::msg(format!(
                    "can not both modify and remove the following {} in the same command: {k}",
                    field.key()
                )));
            }
            set.push((k.to_string(), v.to_string()));
        }
    }
    if changes.is_empty() && !a.list {
        return Err(CmdError::msg(format!(
            "at least one {} update is required",
            &field.key()[..field.key().len() - 1]
        )));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets: Vec<(ApiResource, String, String)> = Vec::new();
    if !a.filenames.is_empty() {
        targets.extend(f.file_targets(&a.filenames, false).await?);
    } else {
        if resource_args.is_empty() {
            return Err(CmdError::plain(
                "error: one or more resources must be specified as <resource> <name> or <resource>/<name>",
            ));
        }
        for s in f.selections(&resource_args).await? {
            if s.names.is_empty() {
                if !a.all && a.selector.is_none() {
                    return Err(CmdError::msg(
                        "resource(s) were provided, but no name was specified",
                    ));
                }
                let ns = (!a.all_namespaces).then_some(namespace.as_str());
                let mut path = s.resource.collection_path(ns);
                if let Some(l) = &a.selector {
                    path = format!("{path}?labelSelector={}", query_escape(l));
                }
                let list = client.get_json(&path, client::JSON).await?;
                for item in list["items"].as_array().into_iter().flatten() {
                    targets.push((
                        s.resource.clone(),
                        item["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        item["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ));
                }
            }
            for n in s.names {
                targets.push((s.resource.clone(), namespace.clone(), n));
            }
        }
    }
    let mut errors = Vec::new();
    for (r, ns, name) in targets {
        let path = r.object_path(Some(&ns), &name);
        let current = match client.get_json(&path, client::JSON).await {
            Ok(v) => v,
            Err(e) => {
                errors.push(e.message());
                continue;
            }
        };
        let display = format!("{}/{name}", r.kind_group());
        if a.list {
            let mut entries: Vec<(String, String)> = current["metadata"][field.key()]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            entries.sort();
            let header = match field {
                Field::Labels => format!("Listing labels for {}/{name}:\n", r.kind_group()),
                Field::Annotations => String::new(),
            };
            output::print(&header);
            for (k, v) in entries {
                output::print(&format!(" {k}={v}\n"));
            }
            continue;
        }
        let old_map: Map<String, Value> = current["metadata"][field.key()]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if !a.overwrite {
            for (k, v) in &set {
                if let Some(existing) = old_map.get(k).and_then(Value::as_str)
                    && existing != v
                {
                    return Err(CmdError::msg(format!(
                        "'{k}' already has a value ({existing}), and --overwrite is false"
                    )));
                }
            }
        }
        let mut new_map = old_map.clone();
        for (k, v) in &set {
            new_map.insert(k.clone(), json!(v));
        }
        for k in &remove {
            new_map.remove(k);
        }
        let old_obj = json!({"metadata": {field.key(): old_map}});
        let mut new_obj = json!({"metadata": {field.key(): new_map}});
        if let Some(rv) = &a.resource_version {
            new_obj["metadata"]["resourceVersion"] = json!(rv);
        }
        let patch = merge::create_merge_patch(&old_obj, &new_obj);
        let old_len = serde_json::to_vec(&old_obj).map(|v| v.len()).unwrap_or(0);
        let new_len = serde_json::to_vec(&new_obj).map(|v| v.len()).unwrap_or(0);
        let msg = match field {
            Field::Annotations => "annotated",
            Field::Labels if old_obj == new_obj => "not labeled",
            Field::Labels if !a.overwrite && new_len < old_len => "unlabeled",
            Field::Labels => "labeled",
        };
        let mut result = current.clone();
        if dry != DryRun::Client && patch.as_object().is_some_and(|m| !m.is_empty()) {
            let mut q = format!("?fieldManager={}", a.field_manager.query(field.manager()));
            if dry == DryRun::Server {
                q.push_str("&dryRun=All");
            }
            match client
                .send_json(
                    http::Method::PATCH,
                    &format!("{path}{q}"),
                    "application/merge-patch+json",
                    &patch,
                )
                .await
            {
                Ok(v) => result = v,
                Err(e) => {
                    errors.push(e.message());
                    continue;
                }
            }
        } else {
            merge::apply_merge_patch(&mut result, &patch);
        }
        match &format {
            Some(fmt) => util::print_object(&result, fmt, false)?,
            None => output::print(&format!("{display} {msg}{}\n", dry.suffix())),
        }
    }
    crate::error::from_messages(errors)
}
