//! `kubectl cordon` and `kubectl uncordon`. Upstream twin: `kubectl/pkg/cmd/drain`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct CordonArgs {
    pub nodes: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

pub async fn cordon(f: &mut Factory, a: CordonArgs, unschedulable: bool) -> CmdResult {
    let dry = super::apply::dry_run_mode(&a.dry_run)?;
    let client = f.client().await?;
    let mut names = a.nodes.clone();
    if let Some(l) = &a.selector {
        let list = client
            .get_json(
                &format!(
                    "/api/v1/nodes?labelSelector={}",
                    cli_runtime::discovery::query_escape(l)
                ),
                client::JSON,
            )
            .await?;
        names.extend(
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string)),
        );
    }
    if names.is_empty() {
        return Err(CmdError::msg("USAGE: cordon NODE [flags]"));
    }
    let verb = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    let mut errors = Vec::new();
    for name in names {
        let name = name
            .strip_prefix("node/")
            .or(name.strip_prefix("nodes/"))
            .unwrap_or(&name)
            .to_string();
        let path = format!(
            "/api/v1/nodes/{}",
            cli_runtime::discovery::percent_encode(&name)
        );
        let node = match client.get_json(&path, client::JSON).await {
            Ok(n) => n,
            Err(e) => {
                errors.push(e.message());
                continue;
            }
        };
        if node["spec"]["unschedulable"].as_bool().unwrap_or(false) == unschedulable {
            output::print(&format!("node/{name} already {verb}\n"));
            continue;
        }
        if dry == super::apply::DryRun::None {
            let patch = json!({"spec": {"unschedulable": if unschedulable { json!(true) } else { json!(null) }}});
            if let Err(e) = client
                .send_json(
                    http::Method::PATCH,
                    &path,
                    "application/strategic-merge-patch+json",
                    &patch,
                )
                .await
            {
                errors.push(e.message());
                continue;
            }
        }
        output::print(&format!("node/{name} {verb}{}\n", dry.suffix()));
    }
    crate::error::from_messages(errors)
}
