//! Plugins: `kubectl foo-bar` runs `kubectl-foo-bar` (or `kubectl-foo` with `bar`) from
//! the PATH, as upstream's plugin handler does, and `kubectl plugin list` shows them with
//! upstream's warnings. Upstream twins: `kubectl/pkg/cmd/cmd.go` (`HandlePluginCommand`),
//! `kubectl/pkg/cmd/plugin/plugin.go`.

use crate::error::{CmdError, CmdResult};
use std::ffi::OsString;

pub fn run(args: Vec<OsString>) -> CmdResult {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    let Some(first) = words.first() else {
        return Err(CmdError::msg("unknown command"));
    };
    // The longest `kubectl-a-b-c` prefix that exists wins.
    let positional = words.iter().take_while(|w| !w.starts_with('-')).count();
    for n in (1..=positional).rev() {
        let parts: Vec<String> = words[..n].iter().map(|w| w.replace('-', "_")).collect();
        let name = format!("kubectl-{}", parts.join("-"));
        if let Some(path) = find_on_path(&name) {
            let status = std::process::Command::new(path)
                .args(&args[n..])
                .status()
                .map_err(|e| CmdError::msg(format!("running {name}: {e}")))?;
            let code = status.code().unwrap_or(1);
            return if code == 0 {
                Ok(())
            } else {
                Err(CmdError::silent(code))
            };
        }
    }
    // No plugin either: cobra's unknown-command error, with its suggestions.
    let mut text = format!("Error: unknown command {first:?} for \"kubectl\"");
    let suggestions = super::flags::suggestions(first);
    if !suggestions.is_empty() {
        text.push_str("\n\nDid you mean this?");
        for s in suggestions {
            text.push_str(&format!("\n\t{s}"));
        }
        text.push('\n');
    }
    Err(CmdError::plain(text))
}

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `kubectl plugin`.
#[derive(clap::Subcommand, Debug)]
pub enum PluginCommand {
    /// List all visible plugin executables on a user's PATH
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// If true, display only the binary name of each plugin, rather than its full path
    #[arg(long = "name-only")]
    pub name_only: bool,
}

pub fn plugin(c: PluginCommand) -> CmdResult {
    let PluginCommand::List(a) = c;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    for d in std::env::split_paths(&path) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    let mut plugins = Vec::new();
    for dir in dirs {
        if dir.as_os_str().to_string_lossy().trim().is_empty() {
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                crate::output::eprint_line(&format!(
                    "Unable to read directory {:?} from your PATH: open {}: {}. Skipping...",
                    dir.display().to_string(),
                    dir.display(),
                    super::util::go_io_error(&e)
                ));
                continue;
            }
        };
        let mut names: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("kubectl-"))
            })
            .collect();
        // os.ReadDir sorts by name.
        names.sort();
        plugins.extend(names);
    }
    let mut errors = Vec::new();
    if plugins.is_empty() {
        errors.push("error: unable to find any kubectl plugins in your PATH".to_string());
    } else {
        crate::output::print("The following compatible plugins are available:\n\n");
    }
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut warnings = 0;
    for p in &plugins {
        let bin = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shown = p.display().to_string();
        crate::output::print(&format!("{}\n", if a.name_only { &bin } else { &shown }));
        for w in verify(p, &bin, &shown, &mut seen) {
            crate::output::eprint_line(&format!("  - {w}"));
            warnings += 1;
        }
    }
    match warnings {
        0 => {}
        1 => errors.push("error: one plugin warning was found".into()),
        n => errors.push(format!("error: {n} plugin warnings were found")),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CmdError::plain(errors.join("\n")))
    }
}

/// `CommandOverrideVerifier.Verify`: not executable, shadowed by an earlier plugin of the
/// same name, or named like one of kubectl's own commands.
fn verify(
    path: &std::path::Path,
    bin: &str,
    shown: &str,
    seen: &mut std::collections::HashMap<String, String>,
) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    match path.metadata() {
        Ok(m) if m.permissions().mode() & 0o111 == 0 => out.push(format!(
            "warning: {shown} identified as a kubectl plugin, but it is not executable"
        )),
        Ok(_) => {}
        Err(e) => out.push(format!(
            "error: unable to identify {shown} as an executable file: stat {shown}: {}",
            super::util::go_io_error(&e)
        )),
    }
    match seen.get(bin) {
        Some(first) => out.push(format!(
            "warning: {shown} is overshadowed by a similarly named plugin: {first}"
        )),
        None => {
            seen.insert(bin.to_string(), shown.to_string());
        }
    }
    // cobra's Find: the first word must be a command; then as deep as the words go.
    let words: Vec<&str> = bin.split('-').skip(1).collect();
    use clap::CommandFactory;
    let root = super::Cli::command();
    if let Some(first) = words.first().and_then(|w| root.find_subcommand(w)) {
        let mut path_words = vec!["kubectl".to_string(), first.get_name().to_string()];
        let mut cmd = first;
        for w in &words[1..] {
            match cmd.find_subcommand(w) {
                Some(sub) => {
                    path_words.push(sub.get_name().to_string());
                    cmd = sub;
                }
                None => break,
            }
        }
        out.push(format!(
            "warning: {bin} overwrites existing command: {:?}",
            path_words.join(" ")
        ));
    }
    out
}
