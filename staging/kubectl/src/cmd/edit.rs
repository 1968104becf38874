//! `kubectl edit`: the objects as YAML in `$KUBE_EDITOR`/`$EDITOR`, the changes sent as a
//! patch, and the file reopened with the server's complaints while it rejects them.
//! Upstream twins: `kubectl/pkg/cmd/edit/edit.go`, `kubectl/pkg/cmd/util/editor`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::merge;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::ApiResource;
use cli_runtime::printers::yaml;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub resources: Vec<String>,
    /// Filename, directory, or URL to files to use to edit the resource
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// If true, keep the managedFields when printing objects in JSON or YAML format.
    #[arg(long = "show-managed-fields")]
    pub show_managed_fields: bool,
}

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\n";

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

// The leading comment block goes (the next round writes a fresh header).
fn manual_strip(text: &str) -> String {
    let mut lines = text.lines().peekable();
    while lines.peek().is_some_and(|l| l.starts_with('#')) {
        lines.next();
    }
    let rest: Vec<&str> = lines.collect();
    let mut s = rest.join("\n");
    s.push('\n');
    s
}

/// The editor command, as upstream's `defaultEnvEditor` splits it.
fn editor_command(path: &std::path::Path) -> Vec<String> {
    let editor = ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|e| !e.is_empty())
        .unwrap_or_else(|| "vi".into());
    if !editor.contains(' ') {
        return vec![editor, path.display().to_string()];
    }
    if !editor.contains(['"', '\'', '\\']) {
        let mut v: Vec<String> = editor.split(' ').map(str::to_string).collect();
        v.push(path.display().to_string());
        return v;
    }
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or("/bin/bash".into());
    vec![
        shell,
        "-c".into(),
        format!("{editor} {:?}", path.display().to_string()),
    ]
}

fn launch(text: &str) -> Result<(String, std::path::PathBuf), CmdError> {
    let path = std::env::temp_dir().join(format!("kubectl-edit-{}.yaml", unique_suffix()));
    std::fs::write(&path, text).map_err(|e| CmdError::msg(format!("{}: {e}", path.display())))?;
    let cmd = editor_command(&path);
    output::flush();
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .map_err(|e| {
            CmdError::msg(format!(
                "unable to launch the editor {:?}: {e}",
                cmd.join(" ")
            ))
        })?;
    if !status.success() {
        return Err(CmdError::msg(format!(
            "there was a problem with the editor {:?}",
            cmd[0]
        )));
    }
    let edited = std::fs::read_to_string(&path)
        .map_err(|e| CmdError::msg(format!("{}: {e}", path.display())))?;
    Ok((edited, path))
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{nanos}", std::process::id())
}

pub async fn run(f: &mut Factory, a: EditArgs) -> CmdResult {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets: Vec<(ApiResource, String, String)> = Vec::new();
    targets.extend(f.file_targets(&a.filenames, false).await?);
    if !a.resources.is_empty() {
        for s in f.selections(&a.resources).await? {
            if s.names.is_empty() {
                let list = client
                    .get_json(&s.resource.collection_path(Some(&namespace)), client::JSON)
                    .await?;
                for i in list["items"].as_array().into_iter().flatten() {
                    targets.push((
                        s.resource.clone(),
                        namespace.clone(),
                        i["metadata"]["name"]
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
    if targets.is_empty() {
        return Err(CmdError::msg(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        ));
    }
    let mut originals = Vec::new();
    for (r, ns, name) in &targets {
        let mut obj = client
            .get_json(&r.object_path(Some(ns), name), client::JSON)
            .await?;
        if !a.show_managed_fields
            && let Some(m) = obj["metadata"].as_object_mut()
        {
            m.remove("managedFields");
        }
        originals.push(obj);
    }
    let document = if originals.len() == 1 {
        originals[0].clone()
    } else {
        json!({"apiVersion": "v1", "kind": "List", "items": originals, "metadata": {}})
    };
    let original_text = format!("{HEADER}{}", yaml::to_yaml(&document));
    let mut buf = original_text.clone();
    let mut previous: Option<String> = None;
    loop {
        let (edited, path) = launch(&buf)?;
        if let Some(prev) = &previous
            && strip_comments(prev) == strip_comments(&edited)
        {
            output::eprint_line(&format!(
                "A copy of your changes has been stored to {:?}",
                path.display().to_string()
            ));
            return Err(CmdError::msg(
                "Edit cancelled, no valid changes were saved.",
            ));
        }
        if strip_comments(&original_text) == strip_comments(&edited) {
            let _ = std::fs::remove_file(&path);
            output::eprint_line("Edit cancelled, no changes made.");
            return Ok(());
        }
        if strip_comments(&edited).trim().is_empty() {
            let _ = std::fs::remove_file(&path);
            output::eprint_line("Edit cancelled, saved file was empty.");
            return Ok(());
        }
        let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
        match cli_runtime::resource::parse_yaml_values(&strip_comments(&edited)) {
            Err(e) => reasons.push((
                format!("The edited file had a syntax error: {e}"),
                Vec::new(),
            )),
            Ok(docs) => {
                let doc = docs.into_iter().next().unwrap_or(Value::Null);
                let updated: Vec<Value> = if doc["kind"] == "List" && originals.len() > 1 {
                    doc["items"].as_array().cloned().unwrap_or_default()
                } else {
                    vec![doc]
                };
                for (i, new) in updated.iter().enumerate() {
                    let Some((r, ns, name)) = targets.get(i) else {
                        break;
                    };
                    let patch = merge::create_merge_patch(&originals[i], new);
                    if patch.as_object().is_some_and(|m| m.is_empty()) {
                        continue;
                    }
                    let path = format!(
                        "{}?fieldManager={}",
                        r.object_path(Some(ns), name),
                        a.field_manager.query("kubectl-edit")
                    );
                    match client
                        .send_json(
                            http::Method::PATCH,
                            &path,
                            "application/merge-patch+json",
                            &patch,
                        )
                        .await
                    {
                        Ok(_) => output::print(&format!("{}/{name} edited\n", r.kind_group())),
                        Err(client::Error::Status { reason, status, .. })
                            if reason == "Invalid" =>
                        {
                            let causes = status["details"]["causes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|c| {
                                    format!(
                                        "{}: {}",
                                        c["field"].as_str().unwrap_or_default(),
                                        c["message"].as_str().unwrap_or_default()
                                    )
                                })
                                .collect();
                            output::eprint_line(&format!(
                                "error: {} {name:?} is invalid",
                                r.resource
                            ));
                            reasons
                                .push((format!("{} {name:?} was not valid", r.resource), causes));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        if reasons.is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        let mut header = HEADER.to_string();
        for (head, others) in &reasons {
            if others.is_empty() {
                header.push_str(&format!("# {head}\n"));
            } else {
                header.push_str(&format!("# {head}:\n"));
            }
            for o in others {
                header.push_str(&format!("# * {o}\n"));
            }
            header.push_str("#\n");
        }
        buf = format!("{header}{}", manual_strip(&edited));
        previous = Some(buf.clone());
        let _ = std::fs::remove_file(&path);
    }
}
