//! `kubectl rollout history` and `kubectl rollout undo` for Deployments (their
//! ReplicaSets carry the revisions) and DaemonSets/StatefulSets (their
//! ControllerRevisions). Upstream twins: `kubectl/pkg/cmd/rollout/rollout_history.go`,
//! `rollout_undo.go`, `kubectl/pkg/polymorphichelpers/history.go`, `rollback.go`.

use super::util::{self, OutputFormat};
use crate::describe::{PrefixWriter, workloads};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::ApiResource;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    pub resources: Vec<String>,
    /// See the details, including podTemplate of the revision specified
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct UndoArgs {
    pub resources: Vec<String>,
    /// The revision to rollback to. Default to 0 (last revision).
    #[arg(long = "to-revision", default_value_t = 0)]
    pub to_revision: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The revisions of one object: revision -> (pod template, change cause, history object).
type History = BTreeMap<i64, (Value, String, Value)>;

async fn owned(client: &RestClient, path: &str, owner: &Value) -> Result<Vec<Value>, CmdError> {
    let list = client.typed_get(path).await?;
    let uid = &owner["metadata"]["uid"];
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| {
                    r.iter()
                        .any(|r| r["controller"] == true && &r["uid"] == uid)
                })
        })
        .cloned()
        .collect())
}

/// The revisions of a Deployment, DaemonSet or StatefulSet.
async fn history(client: &RestClient, r: &ApiResource, obj: &Value) -> Result<History, CmdError> {
    let ns = s(&obj["metadata"]["namespace"]);
    let mut out = History::new();
    match r.kind.as_str() {
        "Deployment" => {
            for rs in owned(
                client,
                &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
                obj,
            )
            .await?
            {
                let Some(v) = rs["metadata"]["annotations"][REVISION]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                else {
                    continue;
                };
                let cause = s(&rs["metadata"]["annotations"][CHANGE_CAUSE]).to_string();
                let mut template = rs["spec"]["template"].clone();
                if !cause.is_empty() {
                    template["metadata"]["annotations"][CHANGE_CAUSE] = json!(cause);
                }
                out.insert(v, (template, cause, rs));
            }
        }
        "DaemonSet" | "StatefulSet" => {
            for cr in owned(
                client,
                &format!("/apis/apps/v1/namespaces/{ns}/controllerrevisions"),
                obj,
            )
            .await?
            {
                let v = cr["revision"].as_i64().unwrap_or(0);
                let cause = s(&cr["metadata"]["annotations"][CHANGE_CAUSE]).to_string();
                // The revision's data is a patch holding the pod template.
                let template = cr["data"]["spec"]["template"].clone();
                out.insert(v, (template, cause, cr));
            }
        }
        _ => {
            return Err(CmdError::msg(format!(
                "no history viewer has been implemented for {:?}",
                group_kind(r)
            )));
        }
    }
    Ok(out)
}

/// `schema.GroupKind.String()`: `Kind.group`, or `Kind` for the core group.
fn group_kind(r: &ApiResource) -> String {
    if r.group.is_empty() {
        r.kind.clone()
    } else {
        format!("{}.{}", r.kind, r.group)
    }
}

/// The overview table (`REVISION  CHANGE-CAUSE`), or one revision's pod template.
fn view(h: &History, revision: i64) -> Result<String, CmdError> {
    if h.is_empty() {
        return Ok("No rollout history found.".into());
    }
    if revision > 0 {
        let (template, _, _) = h
            .get(&revision)
            .ok_or_else(|| CmdError::msg("unable to find the specified revision"))?;
        let mut w = PrefixWriter::default();
        workloads::pod_template(&mut w, template);
        // Upstream's printTemplate writes to a plain buffer: the tabs stay.
        return Ok(w.raw());
    }
    let mut w = PrefixWriter::default();
    w.write(0, "REVISION\tCHANGE-CAUSE\n");
    for (r, (_, cause, _)) in h {
        let cause = if cause.is_empty() { "<none>" } else { cause };
        w.write(0, &format!("{r}\t{cause}\n"));
    }
    Ok(w.finish())
}

async fn each_target(
    f: &mut Factory,
    resources: &[String],
    selector: Option<&str>,
) -> Result<Vec<(ApiResource, Value)>, CmdError> {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut out = Vec::new();
    for (r, name) in super::rollout::targets(f, resources, selector).await? {
        let obj = client
            .get_json(&r.object_path(Some(&namespace), &name), client::JSON)
            .await?;
        out.push((r, obj));
    }
    Ok(out)
}

pub async fn run_history(f: &mut Factory, a: HistoryArgs) -> CmdResult {
    let format = OutputFormat::parse(a.output.as_deref())?;
    let client = f.client().await?;
    for (r, obj) in each_target(f, &a.resources, a.selector.as_deref()).await? {
        let h = history(&client, &r, &obj).await?;
        if a.output.is_some() {
            // The history objects themselves (ReplicaSets or ControllerRevisions).
            if a.revision > 0 {
                let (_, _, o) = h
                    .get(&a.revision)
                    .ok_or_else(|| CmdError::msg("unable to find the specified revision"))?;
                util::print_object(o, &format, false)?;
            } else {
                for (_, _, o) in h.values() {
                    util::print_object(o, &format, false)?;
                }
            }
            continue;
        }
        let text = view(&h, a.revision)?;
        let with = if a.revision > 0 {
            format!("with revision #{}", a.revision)
        } else {
            String::new()
        };
        output::print(&format!(
            "{}/{} {with}\n{text}\n",
            r.kind_group(),
            s(&obj["metadata"]["name"])
        ));
    }
    Ok(())
}

/// Annotations a rollback keeps from the Deployment rather than the ReplicaSet.
const SKIPPED_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove("pod-template-hash");
    }
    t
}

pub async fn run_undo(f: &mut Factory, a: UndoArgs) -> CmdResult {
    let dry = super::apply::dry_run_mode(&a.dry_run)?;
    let client = f.client().await?;
    let mut errors = Vec::new();
    for (r, obj) in each_target(f, &a.resources, a.selector.as_deref()).await? {
        let name = s(&obj["metadata"]["name"]).to_string();
        match undo_one(&client, &r, &obj, a.to_revision, dry).await {
            Ok(result) => output::print(&format!("{}/{name} {result}\n", r.kind_group())),
            Err(e) => errors.push(e.text),
        }
    }
    crate::error::from_messages(errors)
}

async fn undo_one(
    client: &RestClient,
    r: &ApiResource,
    d: &Value,
    to_revision: i64,
    dry: super::apply::DryRun,
) -> Result<String, CmdError> {
    let name = s(&d["metadata"]["name"]);
    if r.kind == "DaemonSet" || r.kind == "StatefulSet" {
        return undo_from_revision(client, r, d, to_revision, dry).await;
    }
    if r.kind != "Deployment" {
        return Err(CmdError::msg(format!(
            "no rollbacker has been implemented for {:?}",
            group_kind(r)
        )));
    }
    if to_revision < 0 {
        return Err(CmdError::msg(format!(
            "unable to find specified revision {to_revision} in history"
        )));
    }
    let h = history(client, r, d).await?;
    // upstream `deploymentRevision`: the one asked for, else the one before the latest.
    let target = if to_revision > 0 {
        if !h.contains_key(&to_revision) {
            return Err(CmdError::msg(format!(
                "unable to find specified revision {to_revision} in history"
            )));
        }
        to_revision
    } else {
        *h.keys().rev().nth(1).ok_or_else(|| {
            CmdError::msg(format!("no rollout history found for deployment {name:?}"))
        })?
    };
    let (_, _, rs) = &h[&target];
    if dry == super::apply::DryRun::Client {
        let mut w = PrefixWriter::default();
        workloads::pod_template(&mut w, &rs["spec"]["template"]);
        return Ok(format!("{} (dry run)", w.raw()));
    }
    if d["spec"]["paused"].as_bool().unwrap_or(false) {
        return Err(CmdError::msg(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again",
        ));
    }
    let template = without_hash(&rs["spec"]["template"]);
    if template == without_hash(&d["spec"]["template"]) {
        return Ok(format!(
            "skipped rollback (current template already matches revision {to_revision})"
        ));
    }
    let mut annotations = serde_json::Map::new();
    for (k, v) in d["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in rs["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    restore(
        client,
        r,
        d,
        dry,
        "application/json-patch+json",
        &patch,
        target,
    )
    .await
}

/// Patches the object back to revision `target` and words the result as upstream.
async fn restore(
    client: &RestClient,
    r: &ApiResource,
    obj: &Value,
    dry: super::apply::DryRun,
    content_type: &str,
    patch: &Value,
    target: i64,
) -> Result<String, CmdError> {
    let mut path = r.object_path(
        obj["metadata"]["namespace"].as_str(),
        s(&obj["metadata"]["name"]),
    );
    if dry == super::apply::DryRun::Server {
        path.push_str("?dryRun=All");
    }
    client
        .typed_patch(&path, content_type, patch)
        .await
        .map_err(|e| {
            CmdError::msg(format!(
                "failed restoring revision {target}: {}",
                e.server_message()
            ))
        })?;
    Ok(format!("rolled back{}", dry.suffix()))
}

/// A DaemonSet's or StatefulSet's rollback (upstream `DaemonSetRollbacker`,
/// `StatefulSetRollbacker`): the chosen ControllerRevision's data, a strategic merge
/// patch replacing the pod template, applied to the object.
async fn undo_from_revision(
    client: &RestClient,
    r: &ApiResource,
    obj: &Value,
    to_revision: i64,
    dry: super::apply::DryRun,
) -> Result<String, CmdError> {
    let h = history(client, r, obj).await?;
    if to_revision == 0 && h.len() <= 1 {
        return Err(CmdError::msg("no last revision to roll back to"));
    }
    let target = if to_revision == 0 {
        h.keys().rev().nth(1).copied()
    } else {
        h.contains_key(&to_revision).then_some(to_revision)
    }
    .ok_or_else(|| {
        CmdError::msg(format!(
            "unable to find specified revision {to_revision} in history"
        ))
    })?;
    let (template, _, revision) = &h[&target];
    let mut template = template.clone();
    if let Some(m) = template.as_object_mut() {
        m.remove("$patch");
    }
    if dry == super::apply::DryRun::Client {
        let mut w = PrefixWriter::default();
        workloads::pod_template(&mut w, &template);
        return Ok(format!("will roll back to {} (dry run)", w.raw()));
    }
    if template == obj["spec"]["template"] {
        return Ok(format!(
            "skipped rollback (current template already matches revision {to_revision})"
        ));
    }
    restore(
        client,
        r,
        obj,
        dry,
        "application/strategic-merge-patch+json",
        &revision["data"],
        target,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overview_lists_revisions_in_order_with_their_causes() {
        let mut h = History::new();
        h.insert(2, (json!({}), "kubectl set image".into(), json!({})));
        h.insert(1, (json!({}), String::new(), json!({})));
        assert_eq!(
            view(&h, 0).unwrap(),
            "REVISION  CHANGE-CAUSE\n1         <none>\n2         kubectl set image\n"
        );
        assert_eq!(
            view(&History::new(), 0).unwrap(),
            "No rollout history found."
        );
        assert_eq!(
            view(&h, 7).unwrap_err().text,
            "error: unable to find the specified revision"
        );
    }
}
