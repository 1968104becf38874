//! `kubectl apply`: client-side three-way apply recording
//! `kubectl.kubernetes.io/last-applied-configuration`, or `--server-side`.
//! Upstream twin: `kubectl/pkg/cmd/apply/apply.go`, `apply/patcher.go`.

use super::apply_prune;
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
#[command(args_conflicts_with_subcommands = true)]
pub struct ApplyArgs {
    #[command(subcommand)]
    pub last_applied: Option<super::apply_last_applied::LastAppliedCommand>,
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
    /// Automatically delete resource objects, that do not appear in the configs and are created by either apply or create --save-config. Should be used with either -l or --all.
    #[arg(long)]
    pub prune: bool,
    /// Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// Overwrite the default allowlist with <group/version/kind> for --prune
    #[arg(long = "prune-allowlist")]
    pub prune_allowlist: Vec<String>,
    /// [alpha] The name of the ApplySet that tracks which resources are being managed, for the purposes of determining what to prune (needs KUBECTL_APPLYSET=true).
    #[arg(long)]
    pub applyset: Option<String>,
    /// Must be "background", "orphan", or "foreground". Defaults to background.
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// Period of time in seconds given to the resource to terminate gracefully. Ignored if negative.
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
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

/// `ApplyOptions.Validate`'s checks of the prune flags.
fn validate_prune(a: &ApplyArgs) -> CmdResult {
    if a.applyset.is_some() && !apply_prune::applyset_enabled() {
        return Err(CmdError::plain(
            "Error: unknown flag: --applyset\nSee 'kubectl apply --help' for usage.",
        ));
    }
    if a.all && a.selector.is_some() {
        return Err(CmdError::msg(
            "cannot set --all and --selector at the same time",
        ));
    }
    if a.applyset.is_some() && !a.prune {
        return Err(CmdError::msg("--applyset requires --prune"));
    }
    if !a.prune {
        return Ok(());
    }
    if a.applyset.is_some() {
        if a.all {
            return Err(CmdError::msg("--all is incompatible with --applyset"));
        }
        if a.selector.is_some() {
            return Err(CmdError::msg("--selector is incompatible with --applyset"));
        }
        if !a.prune_allowlist.is_empty() {
            return Err(CmdError::msg(
                "--prune-allowlist is incompatible with --applyset",
            ));
        }
    } else {
        if !a.all && a.selector.is_none() {
            return Err(CmdError::msg(
                "all resources selected for prune without explicitly passing --all. To prune all resources, pass the --all flag. If you did not mean to prune all resources, specify a label selector",
            ));
        }
        if a.server_side {
            return Err(CmdError::msg(
                "--prune is in alpha and doesn't currently work on objects created by server-side apply",
            ));
        }
    }
    Ok(())
}

/// One object to apply, resolved: its resource, namespace and where it came from.
struct Planned {
    source: String,
    resource: cli_runtime::discovery::ApiResource,
    namespace: String,
    object: Value,
}

pub async fn run(f: &mut Factory, mut a: ApplyArgs) -> CmdResult {
    if let Some(c) = a.last_applied.take() {
        return super::apply_last_applied::run(f, c).await;
    }
    if a.filenames.is_empty() && a.kustomize.is_none() {
        return Err(CmdError::plain("error: must specify one of -f and -k"));
    }
    let dry = dry_run_mode(&a.dry_run)?;
    let propagation = super::delete::propagation_policy(&a.cascade)?;
    validate_prune(&a)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let selector = a
        .selector
        .as_deref()
        .map(apimachinery::labels::Selector::parse)
        .transpose()
        .map_err(CmdError::msg)?;
    let objects =
        cli_runtime::resource::read_sources(&a.filenames, a.recursive, a.kustomize.as_deref())
            .await
            .map_err(CmdError::msg)?;
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    let mut applyset = match &a.applyset {
        Some(reference) => {
            let set = apply_prune::ApplySet::parse(
                f.discovery().await?,
                reference,
                explicit.then_some(namespace.as_str()),
            )?;
            set.validate(&client).await?;
            Some(set)
        }
        None => None,
    };
    let allowlist = if a.prune && applyset.is_none() {
        apply_prune::parse_allowlist(f.discovery().await?, &a.prune_allowlist)?
    } else {
        Vec::new()
    };
    let manager = if a.server_side && a.field_manager == "kubectl-client-side-apply" {
        "kubectl".to_string()
    } else {
        a.field_manager.clone()
    };
    // The builder's pass: mappings, namespaces and the -l filter, before anything is sent.
    // As upstream's builder (ContinueOnError), an object that fails here is reported
    // after the others were applied.
    let mut planned = Vec::new();
    let mut errors = Vec::new();
    for o in objects {
        let mut obj = o.object;
        if let Some(sel) = &selector {
            let labels: std::collections::BTreeMap<String, String> =
                serde_json::from_value(obj["metadata"]["labels"].clone()).unwrap_or_default();
            if !sel.matches(&labels) {
                continue;
            }
        }
        let r = match f.mapping_for_object(&obj).await {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.text);
                continue;
            }
        };
        if let Err(e) = util::check_object_namespace(&obj, r.namespaced, explicit, &namespace) {
            errors.push(e.text);
            continue;
        }
        if r.namespaced && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!(namespace);
        }
        let ns = if r.namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or(&namespace)
                .to_string()
        } else {
            String::new()
        };
        if let Some(set) = &mut applyset {
            set.label_member(&mut obj)?;
            set.add_member(&r, &ns);
        }
        planned.push(Planned {
            source: o.source,
            resource: r,
            namespace: ns,
            object: obj,
        });
    }
    if planned.is_empty() && errors.is_empty() {
        return Err(CmdError::msg("no objects passed to apply"));
    }
    if let Some(set) = &mut applyset {
        set.before_apply(&client, f.discovery().await?, dry).await?;
    }
    let mut visited = apply_prune::Visited::default();
    if explicit {
        visited.namespaces.insert(namespace.clone());
    }
    for p in planned {
        let name = p.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if p.resource.namespaced {
            visited.namespaces.insert(p.namespace.clone());
        }
        let path = p.resource.object_path(Some(&p.namespace), &name);
        let display = cli_runtime::printers::name_line(
            &json!({"kind": p.resource.kind, "apiVersion": p.resource.api_version(), "metadata": {"name": name}}),
        );
        let how = How {
            manager: &manager,
            server_side: a.server_side,
            force_conflicts: a.force_conflicts,
            dry,
            annotate: true,
        };
        let result = apply_object(&client, &p.resource, &p.namespace, &path, p.object, &how).await;
        match result {
            Ok((v, verb)) => {
                if let Some(uid) = v["metadata"]["uid"].as_str() {
                    visited.uids.insert(uid.to_string());
                }
                match &format {
                    Some(fmt) => util::print_object(&v, fmt, false)?,
                    None => output::print(&format!("{display} {verb}{}\n", dry.suffix())),
                }
            }
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
                    p.source
                ),
                other => other.message(),
            }),
        }
    }
    // A failed apply prunes nothing (and leaves the ApplySet at the superset).
    if !errors.is_empty() || !a.prune {
        return crate::error::from_messages(errors);
    }
    let how = apply_prune::DeleteHow {
        propagation,
        grace_period: a.grace_period,
        dry,
        format: &format,
    };
    match &applyset {
        Some(set) => set.prune(&client, &visited, &how).await,
        None => {
            apply_prune::prune_allowlisted(
                &client,
                f.discovery().await?,
                &allowlist,
                a.selector.as_deref(),
                &visited,
                &how,
            )
            .await
        }
    }
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
