//! `kubectl version`. Upstream twin: `kubectl/pkg/cmd/version/version.go`.

use super::util::OutputFormat;
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::json;

/// The Kubernetes release this kubectl speaks.
pub const GIT_VERSION: &str = cli_runtime::KUBECTL_VERSION;

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required).
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

const FIELD_ORDER: &[&str] = &[
    "clientVersion",
    "kustomizeVersion",
    "serverVersion",
    "major",
    "minor",
    "emulationMajor",
    "emulationMinor",
    "minCompatibilityMajor",
    "minCompatibilityMinor",
    "gitVersion",
    "gitCommit",
    "gitTreeState",
    "buildDate",
    "goVersion",
    "compiler",
    "platform",
];

fn ordered_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, indent: usize, out: &mut String) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by_key(|k| {
                    FIELD_ORDER
                        .iter()
                        .position(|f| f == k)
                        .unwrap_or(usize::MAX)
                });
                out.push_str("{\n");
                for (i, k) in keys.iter().enumerate() {
                    out.push_str(&"  ".repeat(indent + 1));
                    out.push_str(&format!("{}: ", serde_json::Value::String((*k).clone())));
                    write(&m[*k], indent + 1, out);
                    if i + 1 < keys.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            _ => out.push_str(&v.to_string()),
        }
    }
    let mut out = String::new();
    write(v, 0, &mut out);
    out
}

fn client_info() -> serde_json::Value {
    json!({
        "major": "1", "minor": "35", "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"), "gitTreeState": "clean",
        "buildDate": "", "goVersion": "", "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

pub async fn run(f: &mut Factory, a: VersionArgs) -> CmdResult {
    let format = match a.output.as_deref() {
        None | Some("") => None,
        Some("yaml") => Some(OutputFormat::Yaml),
        Some("json") => Some(OutputFormat::Json),
        Some(_) => return Err(CmdError::msg("--output must be 'yaml' or 'json'")),
    };
    let mut doc = json!({"clientVersion": client_info()});
    let mut server_err = None;
    if !a.client {
        match f.client().await {
            Ok(c) => match c.get_json("/version", client::JSON).await {
                Ok(v) => doc["serverVersion"] = v,
                Err(e) => server_err = Some(CmdError::from(e)),
            },
            Err(e) => server_err = Some(e),
        }
    }
    match format {
        // Go struct field order, two spaces, as `version` marshals its own struct.
        Some(OutputFormat::Json) => output::print(&format!("{}\n", ordered_json(&doc))),
        Some(fmt) => super::util::print_object(&doc, &fmt, false)?,
        None => {
            output::print(&format!("Client Version: {GIT_VERSION}\n"));
            if let Some(v) = doc["serverVersion"]["gitVersion"].as_str() {
                output::print(&format!("Server Version: {v}\n"));
            }
        }
    }
    match server_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
