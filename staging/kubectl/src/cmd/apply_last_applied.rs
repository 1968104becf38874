//! `kubectl apply view-last-applied` and `apply set-last-applied`: reading and setting
//! the `last-applied-configuration` annotation without applying. Upstream twins:
//! `kubectl/pkg/cmd/apply/apply_view_last_applied.go`, `apply_set_last_applied.go`,
//! `kubectl/pkg/cmd/util/editor/editoptions.go` (`GetApplyPatch`).

use super::apply::{DryRun, LAST_APPLIED, dry_run_mode};
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

#[derive(clap::Subcommand, Debug)]
pub enum LastAppliedCommand {
    /// View the latest last-applied-configuration annotations of a resource/object
    ViewLastApplied(ViewArgs),
    /// Set the last-applied-configuration annotation on a live object to match the contents of a file
    SetLastApplied(SetArgs),
}

#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// TYPE [NAME | -l label] | TYPE/NAME
    pub args: Vec<String>,
    /// Output format. Must be one of (yaml, json)
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
    /// Select all resources in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Filename, directory, or URL to files that contains the last-applied-configuration annotations
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// Filename, directory, or URL to files that contains the last-applied-configuration annotations
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Will create 'last-applied-configuration' annotations if current objects doesn't have one
    #[arg(long = "create-annotation")]
    pub create_annotation: bool,
    /// Output format. One of: (json, yaml, name, go-template, jsonpath, ...).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

pub async fn run(f: &mut Factory, c: LastAppliedCommand) -> CmdResult {
    match c {
        LastAppliedCommand::ViewLastApplied(a) => view(f, a).await,
        LastAppliedCommand::SetLastApplied(a) => set(f, a).await,
    }
}

async fn view(f: &mut Factory, a: ViewArgs) -> CmdResult {
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    // (resource, namespace, name), as the builder visits them.
    let mut targets = Vec::new();
    if !a.filenames.is_empty() {
        targets = f.file_targets(&a.filenames, a.recursive).await?;
    }
    for s in f.selections(&a.args).await? {
        if s.names.is_empty() {
            // Upstream passes `--namespace`'s presence as the builder's
            // allowEmptySelector: with -n a bare type lists everything.
            if a.selector.is_none() && !a.all && !explicit {
                return Err(CmdError::msg(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            for name in
                util::list_names(&client, &s.resource, &namespace, a.selector.as_deref()).await?
            {
                targets.push((s.resource.clone(), namespace.clone(), name));
            }
        }
        for n in s.names {
            targets.push((s.resource.clone(), namespace.clone(), n));
        }
    }
    if targets.is_empty() {
        return Err(CmdError::plain(
            "error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let mut configs = Vec::new();
    for (r, ns, name) in targets {
        let obj = client
            .get_object(&r.object_path(Some(&ns), &name), client::JSON, &ns)
            .await?;
        // Upstream builds its "no last-applied-configuration annotation found" error
        // around a nil error, which is no error: such objects are skipped.
        if let Some(c) = obj["metadata"]["annotations"][LAST_APPLIED].as_str() {
            configs.push(c.to_string());
        }
    }
    for c in configs {
        match a.output.as_str() {
            "json" => output::print(&indent_json(&c)),
            "yaml" => {
                let v: Value = serde_json::from_str(&c)
                    .map_err(|e| CmdError::msg(format!("error converting JSON to YAML: {e}")))?;
                output::print(&cli_runtime::printers::yaml::to_yaml(&v));
            }
            other => {
                return Err(CmdError::plain(format!(
                    "error: Unexpected -o output mode: {other}, the flag 'output' must be one of yaml|json\nSee 'kubectl apply view-last-applied -h' for help and examples"
                )));
            }
        }
    }
    Ok(())
}

/// Go's `json.Indent(dst, src, "", "  ")` on the annotation's own text: its key order
/// kept, leading space dropped, trailing space kept, `{}` and `[]` left whole.
pub fn indent_json(src: &str) -> String {
    let body = src.trim_start();
    let (text, trailing) = body.split_at(body.trim_end().len());
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push_str(trailing);
    out
}

/// `GetApplyPatch`'s annotation: the object as compact JSON, keys sorted, a newline.
fn annotation_of(obj: &Value) -> String {
    format!("{}\n", cli_runtime::printers::to_compact_json(obj))
}

async fn set(f: &mut Factory, a: SetArgs) -> CmdResult {
    let dry = dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    if a.filenames.is_empty() {
        return Err(CmdError::plain(
            "error: must specify one of -f and -k\n\nSee 'kubectl apply set-last-applied -h' for help and examples",
        ));
    }
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    let objects = cli_runtime::resource::read_files(&a.filenames, false)
        .await
        .map_err(CmdError::msg)?;
    let mut patches = Vec::new();
    for o in objects {
        let mut obj = o.object;
        let r = f.mapping_for_object(&obj).await?;
        util::check_object_namespace(&obj, r.namespaced, explicit, &namespace)?;
        if r.namespaced && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!(namespace);
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
        let live = client.get_object(&path, client::JSON, &ns).await?;
        let wanted = annotation_of(&obj);
        let current = live["metadata"]["annotations"][LAST_APPLIED].as_str();
        if current.is_none() && !a.create_annotation {
            return Err(CmdError::msg(format!(
                "no last-applied-configuration annotation found on resource: {name}, to create the annotation, run the command with --create-annotation"
            )));
        }
        if current == Some(wanted.as_str()) {
            output::print(&format!("set-last-applied {name}: no changes required.\n"));
            continue;
        }
        patches.push((r, path, obj, live, wanted));
    }
    for (r, path, obj, live, wanted) in patches {
        let patch = json!({"metadata": {"annotations": {LAST_APPLIED: wanted}}});
        let result = if dry == DryRun::Client {
            // Upstream prints the file's object as read.
            let _ = live;
            obj
        } else {
            let q = if dry == DryRun::Server {
                "?dryRun=All"
            } else {
                ""
            };
            client
                .send_json(
                    http::Method::PATCH,
                    &format!("{path}{q}"),
                    "application/merge-patch+json",
                    &patch,
                )
                .await?
        };
        match &format {
            Some(fmt) => util::print_object(&result, fmt, false)?,
            None => {
                let shown = json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": result["metadata"]});
                output::print(&format!(
                    "{} configured{}\n",
                    cli_runtime::printers::name_line(&shown),
                    dry.suffix()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_as_go_does() {
        assert_eq!(
            indent_json("{\"b\":1,\"a\":{\"x\":[1,2],\"e\":{},\"l\":[]},\"s\":\"q:,{\\\"\"}\n"),
            "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": [\n      1,\n      2\n    ],\n    \"e\": {},\n    \"l\": []\n  },\n  \"s\": \"q:,{\\\"\"\n}\n"
        );
    }
}
