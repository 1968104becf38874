//! `kubectl rollout status|restart|pause|resume` for deployments, daemon sets and
//! stateful sets. Upstream twins: `kubectl/pkg/cmd/rollout`,
//! `kubectl/pkg/polymorphichelpers/rollout_status.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::merge;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::ApiResource;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand, Debug)]
pub enum RolloutCommand {
    /// Show the status of the rollout
    Status(StatusArgs),
    /// Restart a resource
    Restart(TargetArgs),
    /// Mark the provided resource as paused
    Pause(TargetArgs),
    /// View rollout history
    History(super::rollout_history::HistoryArgs),
    /// Undo a previous rollout
    Undo(super::rollout_history::UndoArgs),
    /// Resume a paused resource
    Resume(TargetArgs),
}

#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    pub resources: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    pub resources: Vec<String>,
    /// Watch the status of the rollout until it's done.
    #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch: bool,
    /// The length of time to wait before ending watch, zero means never.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

pub async fn run(f: &mut Factory, c: RolloutCommand) -> CmdResult {
    match c {
        RolloutCommand::Status(a) => status(f, a).await,
        RolloutCommand::Restart(a) => patch_each(f, a, Kind::Restart).await,
        RolloutCommand::Pause(a) => patch_each(f, a, Kind::Pause).await,
        RolloutCommand::Resume(a) => patch_each(f, a, Kind::Resume).await,
        RolloutCommand::History(a) => super::rollout_history::run_history(f, a).await,
        RolloutCommand::Undo(a) => super::rollout_history::run_undo(f, a).await,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Restart,
    Pause,
    Resume,
}

// The named objects, or with `-l` every object of the type that matches.
pub(super) async fn targets(
    f: &mut Factory,
    resources: &[String],
    selector: Option<&str>,
) -> Result<Vec<(ApiResource, String)>, CmdError> {
    if resources.is_empty() {
        return Err(CmdError::msg("required resource not specified"));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut out = Vec::new();
    for s in f.selections(resources).await? {
        if let Some(l) = selector.filter(|_| s.names.is_empty()) {
            let path = format!(
                "{}?labelSelector={}",
                s.resource.collection_path(Some(&namespace)),
                cli_runtime::discovery::query_escape(l)
            );
            let list = client.get_json(&path, client::JSON).await?;
            for i in list["items"].as_array().into_iter().flatten() {
                let name = i["metadata"]["name"].as_str().unwrap_or_default();
                out.push((s.resource.clone(), name.to_string()));
            }
        }
        for n in s.names {
            out.push((s.resource.clone(), n));
        }
    }
    Ok(out)
}

async fn patch_each(f: &mut Factory, a: TargetArgs, kind: Kind) -> CmdResult {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut errors = Vec::new();
    for (r, name) in targets(f, &a.resources, a.selector.as_deref()).await? {
        let path = r.object_path(Some(&namespace), &name);
        let obj = match client.get_json(&path, client::JSON).await {
            Ok(o) => o,
            Err(e) => {
                errors.push(e.message());
                continue;
            }
        };
        let supported = match kind {
            Kind::Restart => matches!(r.kind.as_str(), "Deployment" | "DaemonSet" | "StatefulSet"),
            Kind::Pause | Kind::Resume => r.kind == "Deployment",
        };
        if !supported {
            let what = match kind {
                Kind::Restart => "restarting",
                Kind::Pause => "pausing",
                Kind::Resume => "resuming",
            };
            errors.push(format!(
                "error: {} {name:?} {what} is not supported",
                r.resource_group()
            ));
            continue;
        }
        // Pausing a paused deployment (or resuming a running one) is an error upstream.
        let paused = obj["spec"]["paused"].as_bool().unwrap_or(false);
        let refusal = match kind {
            Kind::Pause if paused => Some("is already paused"),
            Kind::Resume if !paused => Some("is not paused"),
            Kind::Restart if paused => {
                Some("can't restart paused deployment (run rollout resume first)")
            }
            _ => None,
        };
        if let Some(why) = refusal {
            errors.push(format!("error: {} {name:?} {why}", r.resource_group()));
            continue;
        }
        let mut changed = obj.clone();
        let (done, already) = match kind {
            Kind::Restart => {
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
                changed["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                    json!(now);
                ("restarted", "restarted")
            }
            Kind::Pause => {
                changed["spec"]["paused"] = json!(true);
                ("paused", "already paused")
            }
            Kind::Resume => {
                if let Some(spec) = changed["spec"].as_object_mut() {
                    spec.remove("paused");
                }
                if obj["spec"]["paused"] == json!(false) {
                    changed["spec"]["paused"] = json!(false);
                }
                ("resumed", "already resumed")
            }
        };
        let patch = merge::create_merge_patch(&obj, &changed);
        if patch.as_object().is_some_and(|m| m.is_empty()) {
            output::print(&format!("{}/{name} {already}\n", r.kind_group()));
            continue;
        }
        match client
            .send_json(
                http::Method::PATCH,
                &format!(
                    "{path}?fieldManager={}",
                    a.field_manager.query("kubectl-rollout")
                ),
                "application/merge-patch+json",
                &patch,
            )
            .await
        {
            Ok(_) => output::print(&format!("{}/{name} {done}\n", r.kind_group())),
            Err(e) => errors.push(format!("failed to patch: {}", e.server_message())),
        }
    }
    crate::error::from_messages(errors)
}

/// One status line and whether the rollout is done (upstream's StatusViewers).
pub fn rollout_status(kind: &str, name: &str, o: &Value) -> Result<(String, bool), String> {
    let spec = &o["spec"];
    let st = &o["status"];
    let generation = o["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = st["observedGeneration"].as_i64().unwrap_or(0);
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match kind {
        "Deployment" => {
            if generation > observed {
                return Ok((
                    "Waiting for deployment spec update to be observed...\n".into(),
                    false,
                ));
            }
            let progressing = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Progressing");
            if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
                return Err(format!(
                    "deployment {name:?} exceeded its progress deadline"
                ));
            }
            let want = spec["replicas"].as_i64().unwrap_or(1);
            let updated = int(&st["updatedReplicas"]);
            let replicas = int(&st["replicas"]);
            let available = int(&st["availableReplicas"]);
            if updated < want {
                return Ok((
                    format!(
                        "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated...\n"
                    ),
                    false,
                ));
            }
            if replicas > updated {
                return Ok((
                    format!(
                        "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...\n",
                        replicas - updated
                    ),
                    false,
                ));
            }
            if available < updated {
                return Ok((
                    format!(
                        "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available...\n"
                    ),
                    false,
                ));
            }
            Ok((
                format!("deployment {name:?} successfully rolled out\n"),
                true,
            ))
        }
        "DaemonSet" => {
            if generation > observed {
                return Ok((
                    "Waiting for daemon set spec update to be observed...\n".into(),
                    false,
                ));
            }
            let want = int(&st["desiredNumberScheduled"]);
            let updated = int(&st["updatedNumberScheduled"]);
            let available = int(&st["numberAvailable"]);
            if updated < want {
                return Ok((
                    format!(
                        "Waiting for daemon set {name:?} rollout to finish: {updated} out of {want} new pods have been updated...\n"
                    ),
                    false,
                ));
            }
            if available < want {
                return Ok((
                    format!(
                        "Waiting for daemon set {name:?} rollout to finish: {available} of {want} updated pods are available...\n"
                    ),
                    false,
                ));
            }
            Ok((
                format!("daemon set {name:?} successfully rolled out\n"),
                true,
            ))
        }
        "StatefulSet" => {
            if observed == 0 || generation > observed {
                return Ok((
                    "Waiting for statefulset spec update to be observed...\n".into(),
                    false,
                ));
            }
            let want = spec["replicas"].as_i64().unwrap_or(1);
            let ready = int(&st["readyReplicas"]);
            if ready < want {
                return Ok((
                    format!("Waiting for {} pods to be ready...\n", want - ready),
                    false,
                ));
            }
            let updated = int(&st["updatedReplicas"]);
            if st["updateRevision"] != st["currentRevision"] {
                return Ok((
                    format!(
                        "waiting for statefulset rolling update to complete {updated} pods at revision {}...\n",
                        st["updateRevision"].as_str().unwrap_or_default()
                    ),
                    false,
                ));
            }
            Ok((
                format!(
                    "statefulset rolling update complete {want} pods at revision {}...\n",
                    st["currentRevision"].as_str().unwrap_or_default()
                ),
                true,
            ))
        }
        other => Err(format!("no status viewer has been implemented for {other}")),
    }
}

async fn status(f: &mut Factory, a: StatusArgs) -> CmdResult {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let timeout = cli_runtime::config_flags::parse_duration(&a.timeout).map_err(CmdError::msg)?;
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    for (r, name) in targets(f, &a.resources, None).await? {
        let path = r.object_path(Some(&namespace), &name);
        let mut last = String::new();
        loop {
            let obj = client.get_json(&path, client::JSON).await?;
            let (line, done) = rollout_status(&r.kind, &name, &obj).map_err(CmdError::msg)?;
            if line != last {
                output::print(&line);
                output::flush();
                last = line;
            }
            if done || !a.watch {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(CmdError::msg("timed out waiting for the condition"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_status_lines() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                        "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}});
        let (line, done) = rollout_status("Deployment", "web", &d).unwrap();
        assert_eq!(
            line,
            "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...\n"
        );
        assert!(!done);
        let ok = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                         "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}});
        assert_eq!(
            rollout_status("Deployment", "web", &ok).unwrap(),
            ("deployment \"web\" successfully rolled out\n".into(), true)
        );
    }
}
