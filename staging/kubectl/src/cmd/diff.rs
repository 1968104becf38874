//! `kubectl diff -f`: what `apply` would change. Each object's live state and its state
//! after a server dry-run apply are written as YAML under `LIVE-*` and `MERGED-*`
//! directories and compared with `diff -u -N` (or `$KUBECTL_EXTERNAL_DIFF`). Managed
//! fields are left out unless asked for, and Secret values are masked. Exit 0: no
//! differences, 1: differences, above: an error. Upstream twin: `kubectl/pkg/cmd/diff`.

use super::apply::{self, DryRun, How};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::printers::yaml;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// Filename, directory, or URL to files contains the configuration to diff
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// If true, apply runs in the server instead of the client.
    #[arg(long = "server-side")]
    pub server_side: bool,
    /// If true, server-side apply will force the changes against conflicts.
    #[arg(long = "force-conflicts")]
    pub force_conflicts: bool,
    /// Name of the manager used to track field ownership.
    #[arg(long = "field-manager", default_value = "kubectl-client-side-apply")]
    pub field_manager: String,
    /// If true, include managed fields in the diff.
    #[arg(long = "show-managed-fields")]
    pub show_managed_fields: bool,
    /// Process a kustomization directory.
    #[arg(short = 'k', long)]
    pub kustomize: Option<String>,
    /// Include resources that would be deleted by pruning.
    #[arg(long)]
    pub prune: bool,
    /// Number of objects to process in parallel when diffing against the live version. Larger number = faster, but more memory, I/O and CPU over that shorter period of time.
    #[arg(long, default_value_t = 1)]
    pub concurrency: i64,
}

/// A fresh directory `<tmp>/<prefix><random digits>` (Go's `os.MkdirTemp`).
fn temp_dir(prefix: &str) -> Result<PathBuf, CmdError> {
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let mut n = [0u8; 4];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut n))
            .map_err(CmdError::msg)?;
        let dir = base.join(format!("{prefix}{}", u32::from_le_bytes(n)));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(CmdError::msg(e)),
        }
    }
    Err(CmdError::msg("could not create a temporary directory"))
}

/// upstream `InfoObject.Name`: `[group.]version.Kind.namespace.name`.
fn file_name(r: &cli_runtime::discovery::ApiResource, ns: &str, name: &str) -> String {
    let group = if r.group.is_empty() {
        String::new()
    } else {
        format!("{}.", r.group)
    };
    format!("{group}{}.{}.{ns}.{name}", r.version, r.kind)
}

/// upstream `Masker`: Secret values never reach the diff; changed ones say so.
fn mask_secrets(live: &mut Value, merged: &mut Value) {
    let is_secret = |v: &Value| v["kind"] == "Secret";
    if !is_secret(live) && !is_secret(merged) {
        return;
    }
    let (before, after) = (live["data"].clone(), merged["data"].clone());
    let mask = |data: &mut Value, other: &Value, changed: &str| {
        if let Some(m) = data.as_object_mut() {
            for (k, v) in m.iter_mut() {
                *v = if other.get(k).is_some_and(|o| o != v) {
                    json!(changed)
                } else {
                    json!("***")
                };
            }
        }
    };
    mask(&mut live["data"], &after, "*** (before)");
    mask(&mut merged["data"], &before, "*** (after)");
}

fn write(dir: &Path, name: &str, obj: &Value, show_managed_fields: bool) -> Result<(), CmdError> {
    if obj.is_null() {
        return Ok(());
    }
    let mut obj = obj.clone();
    if !show_managed_fields && let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    std::fs::write(dir.join(name), yaml::to_yaml(&obj)).map_err(CmdError::msg)
}

/// upstream `CheckDiffErr`: a failure of diff itself exits 2, 1 meaning differences.
pub async fn run(f: &mut Factory, a: DiffArgs) -> CmdResult {
    run_checked(f, a).await.map_err(|mut e| {
        if e.code == 1 && !e.text.is_empty() {
            e.code = 2;
        }
        e
    })
}

async fn run_checked(f: &mut Factory, a: DiffArgs) -> CmdResult {
    if a.prune {
        return Err(CmdError::msg(
            "--prune is not supported by this kubectl yet",
        ));
    }
    if a.filenames.is_empty() && a.kustomize.is_none() {
        return Err(CmdError::msg("must specify one of -f and -k"));
    }
    let objects =
        cli_runtime::resource::read_sources(&a.filenames, a.recursive, a.kustomize.as_deref())
            .await
            .map_err(CmdError::msg)?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let live_dir = temp_dir("LIVE-")?;
    let merged_dir = temp_dir("MERGED-")?;
    let result = async {
        for o in objects {
            let mut obj = o.object;
            let r = f.mapping_for_object(&obj).await?;
            if r.namespaced && obj["metadata"]["namespace"].as_str().is_none() {
                obj["metadata"]["namespace"] = json!(namespace);
            }
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let path = r.object_path(r.namespaced.then_some(ns.as_str()), &name);
            let mut live = match client.get_json(&path, client::JSON).await {
                Ok(v) => v,
                Err(e) if e.is_not_found() => Value::Null,
                Err(e) => return Err(CmdError::from(e)),
            };
            let how = How {
                manager: &a.field_manager,
                server_side: a.server_side,
                force_conflicts: a.force_conflicts,
                dry: DryRun::Server,
                annotate: false,
            };
            let (mut merged, _) = apply::apply_object(&client, &r, &ns, &path, obj, &how)
                .await
                .map_err(CmdError::from)?;
            mask_secrets(&mut live, &mut merged);
            let file = file_name(&r, &ns, &name);
            write(&live_dir, &file, &live, a.show_managed_fields)?;
            write(&merged_dir, &file, &merged, a.show_managed_fields)?;
        }
        output::flush();
        run_diff(&live_dir, &merged_dir)
    }
    .await;
    let _ = std::fs::remove_dir_all(&live_dir);
    let _ = std::fs::remove_dir_all(&merged_dir);
    result
}

/// `diff -u -N FROM TO`, or `$KUBECTL_EXTERNAL_DIFF FROM TO` (its words as arguments).
fn run_diff(from: &Path, to: &Path) -> CmdResult {
    let external = std::env::var("KUBECTL_EXTERNAL_DIFF").unwrap_or_default();
    let mut words: Vec<String> = external.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        words = vec!["diff".into(), "-u".into(), "-N".into()];
    }
    // Upstream accepts only plain flags for the external program's arguments.
    if let Some(bad) = words[1..].iter().find(|w| !plain_flag(w)) {
        return Err(CmdError::msg(format!(
            "arguments not allowed in KUBECTL_EXTERNAL_DIFF: {bad}"
        )));
    }
    let status = std::process::Command::new(&words[0])
        .args(&words[1..])
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| CmdError::msg(format!("failed to run \"{}\": {e}", words[0])))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(CmdError::silent(1)),
        Some(code) => Err(CmdError {
            text: format!("exit status {code}"),
            code,
        }),
        None => Err(CmdError::msg("the diff program was killed")),
    }
}

/// upstream's `^--?[a-zA-Z0-9-=]+$` check on external diff arguments.
fn plain_flag(w: &str) -> bool {
    let rest = w.strip_prefix("--").or_else(|| w.strip_prefix('-'));
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_with_their_changes_marked() {
        let mut live =
            json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mg==", "gone": "eA=="}});
        let mut merged =
            json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mw==", "new": "eQ=="}});
        mask_secrets(&mut live, &mut merged);
        assert_eq!(
            live["data"],
            json!({"a": "***", "b": "*** (before)", "gone": "***"})
        );
        assert_eq!(
            merged["data"],
            json!({"a": "***", "b": "*** (after)", "new": "***"})
        );
        assert!(plain_flag("-u"));
        assert!(plain_flag("--color=always"));
        assert!(!plain_flag("; rm"));
    }
}
