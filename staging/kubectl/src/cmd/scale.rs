//! `kubectl scale`: the `scale` subresource of deployments, replica sets, stateful
//! sets and replication controllers. Upstream twin: `kubectl/pkg/cmd/scale/scale.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    pub resources: Vec<String>,
    /// The new desired number of replicas. Required.
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Precondition for current size. Requires that the current size of the resource match this value in order to scale. -1 (default) for no condition.
    #[arg(long = "current-replicas", default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    /// Filename, directory, or URL to files identifying the resource to set a new size
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
}

pub async fn run(f: &mut Factory, a: ScaleArgs) -> CmdResult {
    let Some(replicas) = a.replicas else {
        return Err(CmdError::msg("required flag(s) \"replicas\" not set"));
    };
    if replicas < 0 {
        return Err(CmdError::msg(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets = Vec::new();
    for (r, _, name) in f.file_targets(&a.filenames, false).await? {
        targets.push((r, name));
    }
    for s in f.selections(&a.resources).await? {
        for n in s.names {
            targets.push((s.resource.clone(), n));
        }
    }
    if targets.is_empty() {
        return Err(CmdError::plain(
            "error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let mut errors = Vec::new();
    for (r, name) in targets {
        let path = format!("{}/scale", r.object_path(Some(&namespace), &name));
        if a.current_replicas >= 0 {
            let scale = match client.get_json(&path, client::JSON).await {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e.message());
                    continue;
                }
            };
            let current = scale["spec"]["replicas"].as_i64().unwrap_or(0);
            if current != a.current_replicas {
                errors.push(format!(
                    "error: Expected replicas to be {}, was {current}",
                    a.current_replicas
                ));
                continue;
            }
        }
        match client
            .send_json(
                http::Method::PATCH,
                &path,
                "application/merge-patch+json",
                &json!({"spec": {"replicas": replicas}}),
            )
            .await
        {
            Ok(_) => output::print(&format!("{}/{name} scaled\n", r.kind_group())),
            Err(e) => errors.push(e.message()),
        }
    }
    crate::error::from_messages(errors)
}
