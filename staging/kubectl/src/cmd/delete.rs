//! `kubectl delete`: by name, file, label selector or `--all`, with the cascade mode
//! and grace period asked for, waiting until the objects are gone. Upstream twin:
//! `kubectl/pkg/cmd/delete/delete.go`.

use super::apply::{DryRun, dry_run_mode};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::{ApiResource, query_escape};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    pub resources: Vec<String>,
    /// containing the resource to delete.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Process a kustomization directory. This flag can't be used together with -f or -R.
    #[arg(short = 'k', long)]
    pub kustomize: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// Delete all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Treat "resource not found" as a successful delete.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
    /// Period of time in seconds given to the resource to terminate gracefully. Ignored if negative.
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// If true, resources are signaled for immediate shutdown (same as --grace-period=1).
    #[arg(long)]
    pub now: bool,
    /// If true, immediately remove resources from API and bypass graceful deletion.
    #[arg(long)]
    pub force: bool,
    /// Must be "background", "orphan", or "foreground".
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// If true, wait for resources to be gone before returning.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// The length of time to wait before giving up on a delete, zero means determine a timeout from the size of the object
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Output mode. Use "-o name" for shorter output (resource/name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

/// `--cascade` as a `propagationPolicy` (`GetCascadingStrategy`).
pub fn propagation_policy(cascade: &str) -> Result<&'static str, CmdError> {
    match cascade {
        "background" | "true" => Ok("Background"),
        "orphan" | "false" => Ok("Orphan"),
        "foreground" => Ok("Foreground"),
        c => Err(CmdError::msg(format!(
            "invalid cascade value ({c}). Must be \"background\", \"foreground\", or \"orphan\""
        ))),
    }
}

struct Target {
    resource: ApiResource,
    namespace: String,
    name: String,
    uid: Option<String>,
}

pub async fn run(f: &mut Factory, a: DeleteArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    if let Some(o) = &a.output
        && o != "name"
    {
        return Err(CmdError::msg(format!(
            "unexpected -o output mode: {o}. We only support '-o name'"
        )));
    }
    let propagation = propagation_policy(&a.cascade)?;
    let mut grace = a.grace_period;
    if a.now {
        grace = 1;
    }
    if a.force && grace < 0 {
        grace = 0;
    }
    if a.resources.is_empty() && a.filenames.is_empty() && a.kustomize.is_none() {
        return Err(CmdError::plain(
            "error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets: Vec<Target> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if !a.filenames.is_empty() || a.kustomize.is_some() {
        for o in
            cli_runtime::resource::read_sources(&a.filenames, a.recursive, a.kustomize.as_deref())
                .await
                .map_err(CmdError::msg)?
        {
            let r = f.mapping_for_object(&o.object).await?;
            targets.push(Target {
                namespace: o.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&namespace)
                    .to_string(),
                name: o.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                resource: r,
                uid: None,
            });
        }
    } else {
        let selections = f.selections(&a.resources).await?;
        for s in selections {
            if !s.names.is_empty() {
                if a.all || a.selector.is_some() {
                    return Err(CmdError::msg(
                        "name cannot be provided when a selector is specified",
                    ));
                }
                for n in s.names {
                    targets.push(Target {
                        resource: s.resource.clone(),
                        namespace: namespace.clone(),
                        name: n,
                        uid: None,
                    });
                }
                continue;
            }
            if !a.all && a.selector.is_none() && a.field_selector.is_none() {
                return Err(CmdError::msg(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let mut q = Vec::new();
            if let Some(l) = &a.selector {
                q.push(format!("labelSelector={}", query_escape(l)));
            }
            if let Some(fs) = &a.field_selector {
                q.push(format!("fieldSelector={}", query_escape(fs)));
            }
            let ns = (!a.all_namespaces).then_some(namespace.as_str());
            let mut path = s.resource.collection_path(ns);
            if !q.is_empty() {
                path = format!("{path}?{}", q.join("&"));
            }
            let list = client.get_json(&path, client::JSON).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                targets.push(Target {
                    resource: s.resource.clone(),
                    namespace: item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    name: item["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    uid: None,
                });
            }
        }
        if targets.is_empty() {
            output::print("No resources found\n");
            return Ok(());
        }
    }
    let mut deleted = Vec::new();
    for mut t in targets {
        let mut options =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation});
        if grace >= 0 {
            options["gracePeriodSeconds"] = json!(grace);
        }
        if dry == DryRun::Server {
            options["dryRun"] = json!(["All"]);
        }
        let path = t.resource.object_path(Some(&t.namespace), &t.name);
        let result = if dry == DryRun::Client {
            client.get_json(&path, client::JSON).await
        } else {
            client
                .send_json(http::Method::DELETE, &path, client::JSON, &options)
                .await
        };
        match result {
            Ok(v) => {
                t.uid = uid_of(&v);
                print_deleted(&t, grace, dry, a.output.is_some());
                deleted.push(t);
            }
            Err(e) if e.is_not_found() && a.ignore_not_found => {}
            Err(e) => errors.push(e.message()),
        }
    }
    if a.wait && dry == DryRun::None && !deleted.is_empty() {
        let timeout =
            cli_runtime::config_flags::parse_duration(&a.timeout).map_err(CmdError::msg)?;
        let timeout = if timeout.is_zero() {
            Duration::from_secs(7 * 24 * 3600)
        } else {
            timeout
        };
        output::flush();
        wait_gone(&client, &deleted, timeout).await?;
    }
    crate::error::from_messages(errors)
}

fn uid_of(v: &Value) -> Option<String> {
    // A delete returns the object (while finalizers run) or a Status with details.
    v["metadata"]["uid"]
        .as_str()
        .or(v["details"]["uid"].as_str())
        .map(str::to_string)
}

fn print_deleted(t: &Target, grace: i64, dry: DryRun, name_only: bool) {
    let kind = t.resource.kind_group();
    if name_only {
        output::print(&format!("{kind}/{}\n", t.name));
        return;
    }
    let mut op = if grace == 0 {
        "force deleted".to_string()
    } else {
        "deleted".to_string()
    };
    if t.resource.namespaced {
        op = format!("{op} from {} namespace", t.namespace);
    }
    output::print(&format!("{kind} \"{}\" {op}{}\n", t.name, dry.suffix()));
}

// Until each object is gone (or replaced by a new one of the same name).
async fn wait_gone(
    client: &client::RestClient,
    targets: &[Target],
    timeout: Duration,
) -> CmdResult {
    let deadline = Instant::now() + timeout;
    for t in targets {
        let path = t.resource.object_path(Some(&t.namespace), &t.name);
        let mut delay = Duration::from_millis(50);
        loop {
            match client.get_json(&path, client::JSON).await {
                Err(e) if e.is_not_found() => break,
                Ok(v) if t.uid.is_some() && uid_of(&v) != t.uid => break,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if Instant::now() > deadline {
                return Err(CmdError::msg(format!(
                    "timed out waiting for the condition on {}/{}",
                    t.resource.resource_group(),
                    t.name
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
    Ok(())
}
