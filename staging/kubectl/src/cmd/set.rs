//! `kubectl set image|env`: change a workload's pod template. Upstream twins:
//! `kubectl/pkg/cmd/set/set_image.go`, `set_env.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::merge;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

#[derive(clap::Subcommand, Debug)]
pub enum SetCommand {
    /// Update the image of a pod template
    Image(ImageArgs),
    /// Update environment variables on a pod template
    Env(EnvArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// TYPE NAME CONTAINER=IMAGE ... (or TYPE/NAME; `*` for every container)
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// TYPE NAME KEY=VALUE ... KEY- (or TYPE/NAME)
    pub args: Vec<String>,
    /// The names of containers in the selected pod templates to change - may use wildcards
    #[arg(short = 'c', long, default_value = "*")]
    pub containers: String,
}

pub async fn run(f: &mut Factory, c: SetCommand) -> CmdResult {
    match c {
        SetCommand::Image(a) => image(f, a).await,
        SetCommand::Env(a) => env(f, a).await,
    }
}

fn split(args: &[String]) -> (Vec<String>, Vec<String>) {
    args.iter()
        .cloned()
        .partition(|a| !(a.contains('=') || a.ends_with('-') && !a.contains('/')))
}

// The pod spec inside a workload (or a pod).
fn pod_spec(obj: &mut Value) -> &mut Value {
    if obj["kind"] == "Pod" {
        &mut obj["spec"]
    } else if obj["kind"] == "CronJob" {
        &mut obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &mut obj["spec"]["template"]["spec"]
    }
}

async fn update_each(
    f: &mut Factory,
    manager: &str,
    resource_args: &[String],
    verb: &str,
    change: &dyn Fn(&mut Value) -> Result<(), CmdError>,
) -> CmdResult {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut errors = Vec::new();
    for s in f.selections(resource_args).await? {
        for name in s.names {
            let path = s.resource.object_path(Some(&namespace), &name);
            let obj = client.get_json(&path, client::JSON).await?;
            let mut changed = obj.clone();
            change(&mut changed)?;
            let patch = merge::create_merge_patch(&obj, &changed);
            if patch.as_object().is_some_and(|m| m.is_empty()) {
                continue;
            }
            match client
                // A merge patch replaces the container list whole, so removals stick.
                .send_json(
                    http::Method::PATCH,
                    &format!("{path}?fieldManager={manager}"),
                    "application/merge-patch+json",
                    &patch,
                )
                .await
            {
                Ok(_) => output::print(&format!("{}/{name} {verb}\n", s.resource.kind_group())),
                Err(e) => errors.push(format!("failed to patch {verb}: {}", e.server_message())),
            }
        }
    }
    crate::error::from_messages(errors)
}

async fn image(f: &mut Factory, a: ImageArgs) -> CmdResult {
    let (resources, images) = split(&a.args);
    if images.is_empty() {
        return Err(CmdError::msg("at least one image update is required"));
    }
    let pairs: Vec<(String, String)> = images
        .iter()
        .filter_map(|i| {
            i.split_once('=')
                .map(|(c, img)| (c.to_string(), img.to_string()))
        })
        .collect();
    update_each(
        f,
        &a.field_manager.query("kubectl-set"),
        &resources,
        "image updated",
        &|obj| {
            let spec = pod_spec(obj);
            for (name, img) in &pairs {
                let mut found = false;
                for list in ["initContainers", "containers"] {
                    for c in spec[list].as_array_mut().into_iter().flatten() {
                        if name == "*" || c["name"] == name.as_str() {
                            c["image"] = json!(img);
                            found = true;
                        }
                    }
                }
                if !found {
                    return Err(CmdError::msg(format!(
                        "unable to find container named {name:?}"
                    )));
                }
            }
            Ok(())
        },
    )
    .await
}

async fn env(f: &mut Factory, a: EnvArgs) -> CmdResult {
    let (resources, envs) = split(&a.args);
    if envs.is_empty() {
        return Err(CmdError::msg(
            "at least one environment variable must be provided",
        ));
    }
    let pattern = a.containers.clone();
    update_each(
        f,
        &a.field_manager.query("kubectl-set"),
        &resources,
        "env updated",
        &|obj| {
            let spec = pod_spec(obj);
            for c in spec["containers"].as_array_mut().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default();
                if pattern != "*" && pattern != name {
                    continue;
                }
                let mut list: Vec<Value> = c["env"].as_array().cloned().unwrap_or_default();
                for e in &envs {
                    if let Some(k) = e.strip_suffix('-')
                        && !e.contains('=')
                    {
                        list.retain(|x| x["name"] != k);
                    } else if let Some((k, v)) = e.split_once('=') {
                        match list.iter_mut().find(|x| x["name"] == k) {
                            Some(x) => *x = json!({"name": k, "value": v}),
                            None => list.push(json!({"name": k, "value": v})),
                        }
                    }
                }
                if list.is_empty() {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("env");
                    }
                } else {
                    c["env"] = json!(list);
                }
            }
            Ok(())
        },
    )
    .await
}
