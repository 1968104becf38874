//! `kubectl patch` and `kubectl replace`. Upstream twins:
//! `kubectl/pkg/cmd/patch/patch.go`, `kubectl/pkg/cmd/replace/replace.go`.

use super::apply::{DryRun, dry_run_mode};
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub resources: Vec<String>,
    /// The patch to be applied to the resource JSON file.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file containing a patch to be applied to the resource.
    #[arg(long = "patch-file")]
    pub patch_file: Option<String>,
    /// The type of patch being provided; one of [json merge strategic]
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// Filename, directory, or URL to files identifying the resource to update
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// If specified, patch will operate on the subresource of the requested object.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

#[derive(clap::Args, Debug)]
pub struct ReplaceArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// The files that contain the configurations to replace.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// If true, immediately remove resources from API and bypass graceful deletion. Note that immediate deletion of some resources may result in inconsistency or data loss and requires confirmation.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

pub async fn patch(f: &mut Factory, a: PatchArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let content_type = match a.patch_type.as_str() {
        "json" => "application/json-patch+json",
        "merge" => "application/merge-patch+json",
        "strategic" => "application/strategic-merge-patch+json",
        t => {
            return Err(CmdError::msg(format!(
                "--type must be one of [json merge strategic], not {t:?}"
            )));
        }
    };
    let text = match (&a.patch, &a.patch_file) {
        (Some(p), None) => p.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| CmdError::msg(format!("unable to read patch file: {e}")))?,
        (Some(_), Some(_)) => {
            return Err(CmdError::msg(
                "cannot specify --patch and --patch-file together",
            ));
        }
        (None, None) => {
            return Err(CmdError::msg(
                "must specify --patch or --patch-file containing the contents of the patch",
            ));
        }
    };
    // YAML is accepted as well as JSON, as upstream converts it.
    let body: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => cli_runtime::resource::parse_yaml_values(&text)
            .map_err(CmdError::msg)?
            .into_iter()
            .next()
            .ok_or_else(|| CmdError::msg("unable to parse \"\": yaml: empty patch"))?,
    };
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets = Vec::new();
    targets.extend(f.file_targets(&a.filenames, false).await?);
    for s in f.selections(&a.resources).await? {
        if s.names.is_empty() {
            return Err(CmdError::msg(
                "resource(s) were provided, but no name was specified",
            ));
        }
        for n in s.names {
            targets.push((s.resource.clone(), namespace.clone(), n));
        }
    }
    if targets.is_empty() {
        return Err(CmdError::msg("must specify one or more resources"));
    }
    let bytes = serde_json::to_vec(&body).map_err(CmdError::msg)?;
    let mut errors = Vec::new();
    for (r, ns, name) in targets {
        let mut path = r.object_path(Some(&ns), &name);
        if let Some(sub) = &a.subresource {
            path = format!("{path}/{sub}");
        }
        let before = match client.get_json(&path, client::JSON).await {
            Ok(v) => v,
            Err(e) => {
                errors.push(e.message());
                continue;
            }
        };
        if dry == DryRun::Client {
            output::print(&format!("{}/{name} patched (dry run)\n", r.kind_group()));
            continue;
        }
        let mut q = format!("?fieldManager={}", a.field_manager.query("kubectl-patch"));
        if dry == DryRun::Server {
            q.push_str("&dryRun=All");
        }
        match client
            .request(
                http::Method::PATCH,
                &format!("{path}{q}"),
                client::JSON,
                Some((content_type, bytes.clone())),
            )
            .await
            .and_then(|resp| client::decode(&resp.body))
        {
            Ok(after) => match &format {
                Some(fmt) => util::print_object(&after, fmt, false)?,
                None => {
                    let what = if after == before {
                        "patched (no change)"
                    } else {
                        "patched"
                    };
                    output::print(&format!(
                        "{}/{name} {what}{}\n",
                        r.kind_group(),
                        dry.suffix()
                    ));
                }
            },
            Err(e) => errors.push(e.message()),
        }
    }
    crate::error::from_messages(errors)
}

pub async fn replace(f: &mut Factory, a: ReplaceArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    if a.filenames.is_empty() {
        return Err(CmdError::plain("error: must specify --filename to replace"));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut errors = Vec::new();
    for o in cli_runtime::resource::read_files(&a.filenames, false)
        .await
        .map_err(CmdError::msg)?
    {
        let mut obj = o.object;
        let r = f.mapping_for_object(&obj).await?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace)
            .to_string();
        if r.namespaced {
            obj["metadata"]["namespace"] = Value::String(ns.clone());
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let path = r.object_path(Some(&ns), &name);
        let mut q = format!("?fieldManager={}", a.field_manager.query("kubectl-replace"));
        if dry == DryRun::Server {
            q.push_str("&dryRun=All");
        }
        let result = if dry == DryRun::Client {
            Ok(obj.clone())
        } else if a.force {
            let _ = client
                .request(http::Method::DELETE, &path, client::JSON, None)
                .await;
            output::print(&format!("{} \"{name}\" deleted\n", r.kind_group()));
            client
                .send_json(
                    http::Method::POST,
                    &format!("{}{q}", r.collection_path(Some(&ns))),
                    client::JSON,
                    &obj,
                )
                .await
        } else {
            client
                .send_json(http::Method::PUT, &format!("{path}{q}"), client::JSON, &obj)
                .await
        };
        match result {
            Ok(v) => match &format {
                Some(fmt) => util::print_object(&v, fmt, false)?,
                None => output::print(&format!(
                    "{}/{name} replaced{}\n",
                    r.kind_group(),
                    dry.suffix()
                )),
            },
            Err(client::Error::Status {
                reason, message, ..
            }) => errors.push(format!(
                "Error from server ({reason}): error when replacing \"{}\": {message}",
                o.source
            )),
            Err(e) => errors.push(e.message()),
        }
    }
    crate::error::from_messages(errors)
}
