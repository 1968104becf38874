//! Plugins: `kubectl foo-bar` runs `kubectl-foo-bar` (or `kubectl-foo` with `bar`) from
//! the PATH, as upstream's plugin handler does. Upstream twin: `kubectl/pkg/cmd/cmd.go`
//! (`HandlePluginCommand`).

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
