//! `kubectl apply`: client-side three-way apply recording
//! `kubectl.kubernetes.io/last-applied-configuration`, or `--server-side`.
//! Upstream twin: `kubectl/pkg/cmd/apply/apply.go`, `apply/patcher.go`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::merge;
use crate::output;
use crate::strategicpatch;
use cli_runtime::client;
use cli_runtime::discovery::query_escape;
use serde_json::{Value, json};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// The files that contain the configurations to apply.
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
    /// If true, apply runs in the server instead of the client.
    #[arg(long = "server-side")]
    pub server_side: bool,
    /// If true, server-side apply will force the changes against conflicts.
    #[arg(long = "force-conflicts")]
    pub force_conflicts: bool,
    /// Name of the manager used to track field ownership.
    #[arg(long = "field-manager", default_value = "kubectl-client-side-apply")]
    pub field_manager: String,
    /// Process a kustomization directory.
    #[arg(short = 'k', long)]
    pub kustomize: Option<String>,
    /// Automatically delete resource objects that do not appear in the configs (needs --applyset or -l).
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

pub fn dry_run_mode(s: &str) -> Result<DryRun, CmdError> {
    match s {
        "none" | "false" => Ok(DryRun::None),
        "client" | "true" => Ok(DryRun::Client),
        "server" => Ok(DryRun::Server),
        "unchanged" => Err(CmdError::msg(
            "--dry-run flag without a value was specified. A value must be set: \"none\", \"server\", or \"client\".",
        )),
        other => Err(CmdError::msg(format!(
            "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
        ))),
    }
}

pub async fn run(f: &mut Factory, a: ApplyArgs) -> CmdResult {
    if a.prune {
        return Err(CmdError::msg(
            "--prune is not supported by this kubectl yet",
        ));
    }
    if a.filenames.is_empty() && a.kustomize.is_none() {
        return Err(CmdError::plain("error: must specify one of -f and -k"));
    }
    let dry = dry_run_mode(&a.dry_run)?;
    let format = a
        .output
        .as_deref()
        .map(|o| OutputFormat::parse(Some(o)))
        .transpose()?;
    let objects =
        cli_runtime::resource::read_sources(&a.filenames, a.recursive, a.kustomize.as_deref())
            .map_err(CmdError::msg)?;
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    let manager = if a.server_side && a.field_manager == "kubectl-client-side-apply" {
        "kubectl".to_string()
    } else {
        a.field_manager.clone()
    };
    let mut errors = Vec::new();
    for o in objects {
        let mut obj = o.object;
        let r = f.mapping_for_object(&obj).await?;
        if r.namespaced {
            match obj["metadata"]["namespace"].as_str() {
                Some(n) if explicit && n != namespace => {
                    return Err(CmdError::msg(format!(
                        "the namespace from the provided object \"{n}\" does not match the namespace \"{namespace}\". You must pass '--namespace={n}' to perform this operation."
                    )));
                }
                Some(_) => {}
                None => obj["metadata"]["namespace"] = json!(namespace),
            }
        }
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace)
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let path = r.object_path(Some(&ns), &name);
        let display = cli_runtime::printers::name_line(
            &json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": {"name": name}}),
        );
        let how = How {
            manager: &manager,
            server_side: a.server_side,
            force_conflicts: a.force_conflicts,
            dry,
            annotate: true,
        };
        let result = apply_object(&client, &r, &ns, &path, obj, &how).await;
        match result {
            Ok((v, verb)) => match &format {
                Some(fmt) => util::print_object(&v, fmt, false)?,
                None => output::print(&format!("{display} {verb}{}\n", dry.suffix())),
            },
            Err(e) => errors.push(match &e {
                client::Error::Status {
                    reason, message, ..
                } => format!(
                    "Error from server ({reason}): error when {} \"{}\": {message}",
                    if a.server_side {
                        "patching"
                    } else {
                        "applying patch"
                    },
                    o.source
                ),
                other => other.message(),
            }),
        }
    }
    crate::error::from_messages(errors)
}

/// The object with its last-applied annotation: itself, compact, without that annotation.
/// (An empty `annotations` map stays, as upstream's `GetModifiedConfiguration` leaves it.)
/// How one object is applied.
pub struct How<'a> {
    pub manager: &'a str,
    pub server_side: bool,
    pub force_conflicts: bool,
    pub dry: DryRun,
    /// Whether the applied configuration is recorded in `last-applied-configuration`
    /// (apply) or not (diff: upstream's `GetModifiedConfiguration(annotate=false)`).
    pub annotate: bool,
}

/// Applies one object (server-side, or client-side with the three-way patch) at
/// `path`; the result and the verb to report.
pub async fn apply_object(
    client: &client::RestClient,
    r: &cli_runtime::discovery::ApiResource,
    ns: &str,
    path: &str,
    obj: Value,
    how: &How<'_>,
) -> Result<(Value, &'static str), client::Error> {
    let mut query = vec![format!("fieldManager={}", query_escape(how.manager))];
    if how.dry == DryRun::Server {
        query.push("dryRun=All".into());
    }
    if how.server_side {
        if how.force_conflicts {
            query.push("force=true".into());
        }
        let body = serde_json::to_vec(&obj)
            .map_err(|e| client::Error::Transport(format!("error: {e}")))?;
        return client
            .request(
                http::Method::PATCH,
                &format!("{path}?{}", query.join("&")),
                client::JSON,
                Some(("application/apply-patch+yaml", body)),
            )
            .await
            .and_then(|resp| client::decode(&resp.body))
            .map(|v| (v, "serverside-applied"));
    }
    client_side(client, r, ns, path, &query, obj, how).await
}

pub fn with_last_applied(obj: &Value) -> Value {
    let mut bare = obj.clone();
    if !bare["metadata"]["annotations"].is_object() {
        bare["metadata"]["annotations"] = json!({});
    }
    if let Some(ann) = bare["metadata"]["annotations"].as_object_mut() {
        ann.remove(LAST_APPLIED);
    }
    let mut out = obj.clone();
    let text = format!("{}\n", cli_runtime::printers::to_compact_json(&bare));
    if !out["metadata"]["annotations"].is_object() {
        out["metadata"]["annotations"] = json!({});
    }
    out["metadata"]["annotations"][LAST_APPLIED] = json!(text);
    out
}

async fn client_side(
    client: &client::RestClient,
    r: &cli_runtime::discovery::ApiResource,
    ns: &str,
    path: &str,
    query: &[String],
    obj: Value,
    how: &How<'_>,
) -> Result<(Value, &'static str), client::Error> {
    let dry = how.dry;
    let modified = if how.annotate {
        with_last_applied(&obj)
    } else {
        // As upstream's: the annotations map stays, empty if need be.
        let mut bare = obj.clone();
        if !bare["metadata"]["annotations"].is_object() {
            bare["metadata"]["annotations"] = json!({});
        }
        if let Some(a) = bare["metadata"]["annotations"].as_object_mut() {
            a.remove(LAST_APPLIED);
        }
        bare
    };
    let current = match client.get_json(path, client::JSON).await {
        Ok(v) => Some(v),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let Some(current) = current else {
        if dry == DryRun::Client {
            return Ok((modified, "created"));
        }
        let created = client
            .send_json(
                http::Method::POST,
                &format!("{}?{}", r.collection_path(Some(ns)), query.join("&")),
                client::JSON,
                &modified,
            )
            .await?;
        return Ok((created, "created"));
    };
    // A client dry run reports "configured" without comparing, as upstream's does.
    if dry == DryRun::Client {
        return Ok((current, "configured"));
    }
    let last = current["metadata"]["annotations"][LAST_APPLIED].as_str();
    if last.is_none() {
        output::eprint_line(&format!(
            "Warning: resource {}/{} is missing the {LAST_APPLIED} annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.",
            r.resource_group(),
            current["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    let original: Value = last
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    // Nothing changed by the plain three-way merge means nothing changes by the
    // strategic one either: no schema needed.
    let merge_patch = merge::three_way_merge_patch(&original, &modified, &current);
    if merge_patch.as_object().is_some_and(|m| m.is_empty()) {
        return Ok((current, "unchanged"));
    }
    // Built-in kinds get a strategic merge patch from the server's schema, the rest a
    // JSON merge patch, as upstream's apply patcher decides.
    let doc = cli_runtime::openapi::group_version(client, &r.group, &r.version).await?;
    let schema = doc
        .as_deref()
        .and_then(|d| strategicpatch::Schema::for_builtin_kind(d, &r.group, &r.version, &r.kind));
    let (patch, patch_type) = match schema {
        Some(s) => (
            strategicpatch::three_way(&original, &modified, &current, s),
            "application/strategic-merge-patch+json",
        ),
        None => (merge_patch, "application/merge-patch+json"),
    };
    if patch.as_object().is_some_and(|m| m.is_empty()) {
        return Ok((current, "unchanged"));
    }
    let patched = client
        .send_json(
            http::Method::PATCH,
            &format!("{path}?{}", query.join("&")),
            patch_type,
            &patch,
        )
        .await?;
    Ok((patched, "configured"))
}
