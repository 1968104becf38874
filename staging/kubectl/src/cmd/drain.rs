//! `kubectl cordon`, `uncordon` and `drain`: nodes marked unschedulable, and drained by
//! evicting (or deleting) their pods with upstream's filters for DaemonSet, mirror,
//! local-storage and unmanaged pods. Upstream twins: `kubectl/pkg/cmd/drain`,
//! `kubectl/pkg/drain`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

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
    let names = node_names(&client, &a.nodes, a.selector.as_deref(), "cordon").await?;
    let (_, errors) = set_unschedulable(&client, names, unschedulable, dry).await;
    crate::error::from_messages(errors)
}

/// The nodes named or selected.
async fn node_names(
    client: &client::RestClient,
    nodes: &[String],
    selector: Option<&str>,
    command: &str,
) -> Result<Vec<String>, CmdError> {
    if !nodes.is_empty() && selector.is_some() {
        return Err(CmdError::plain(format!(
            "error: cannot specify both a node name and a --selector option\nSee 'kubectl {command} -h' for help and examples"
        )));
    }
    let mut names = nodes.to_vec();
    if let Some(l) = selector {
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
        return Err(CmdError::plain(format!(
            "error: USAGE: {command} NODE [flags]\nSee 'kubectl {command} -h' for help and examples"
        )));
    }
    Ok(names)
}

/// Cordons or uncordons each node; the nodes now as wanted, and the errors.
async fn set_unschedulable(
    client: &client::RestClient,
    names: Vec<String>,
    unschedulable: bool,
    dry: super::apply::DryRun,
) -> (Vec<String>, Vec<String>) {
    let mut done = Vec::new();
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
            output::print(&format!("node/{name} already {verb}{}\n", dry.suffix()));
            done.push(name);
            continue;
        }
        if dry == super::apply::DryRun::None {
            let patch = json!({"spec": {"unschedulable": if unschedulable { json!(true) } else { json!(null) }}});
            if let Err(e) = client
                .typed_patch(&path, "application/strategic-merge-patch+json", &patch)
                .await
            {
                errors.push(e.message());
                continue;
            }
        }
        output::print(&format!("node/{name} {verb}{}\n", dry.suffix()));
        done.push(name);
    }
    (done, errors)
}

#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    pub nodes: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Ignore DaemonSet-managed pods.
    #[arg(long = "ignore-daemonsets")]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).
    #[arg(long = "delete-emptydir-data")]
    pub delete_emptydir_data: bool,
    /// Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used.
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// The length of time to wait before giving up, zero means infinite
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Label selector to filter pods on the node
    #[arg(long = "pod-selector")]
    pub pod_selector: Option<String>,
    /// Force drain to use delete, even if eviction is supported. This will bypass checking PodDisruptionBudgets, use with caution.
    #[arg(long = "disable-eviction")]
    pub disable_eviction: bool,
    /// If pod DeletionTimestamp older than N seconds, skip waiting for the pod.  Seconds must be greater than 0 to skip.
    #[arg(long = "skip-wait-for-delete-timeout", default_value_t = 0)]
    pub skip_wait_for_delete_timeout: i64,
    /// Return large lists in chunks rather than all at once. Pass 0 to disable.
    #[arg(long = "chunk-size", default_value_t = 500)]
    pub chunk_size: i64,
}

const DAEMONSET_FATAL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_WARNING: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";
/// Between eviction attempts refused by a disruption budget.
const EVICT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What the filters decided for one pod (upstream `PodDeleteStatus`).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Okay,
    Skip,
    Warning(bool, String),
    Error(String),
}

impl Verdict {
    fn delete(&self) -> bool {
        matches!(self, Verdict::Okay | Verdict::Warning(true, _))
    }
}

/// The filters' settings.
pub struct Filters {
    pub force: bool,
    pub ignore_daemonsets: bool,
    pub delete_emptydir_data: bool,
    pub skip_wait_for_delete_timeout: i64,
    pub now: jiff::Timestamp,
}

fn finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn controller_of(pod: &Value) -> Option<&Value> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

impl Filters {
    /// upstream `makeFilters` in order; the first that keeps a pod decides.
    /// `daemonset_found` says whether a DaemonSet owner still exists (`Err` on a lookup
    /// failure other than NotFound).
    pub fn verdict(
        &self,
        pod: &Value,
        daemonset_found: impl Fn(&str, &str) -> Result<bool, String>,
    ) -> Verdict {
        let filters: [&dyn Fn() -> Verdict; 5] = [
            &|| self.skip_deleted(pod),
            &|| self.daemonset(pod, &daemonset_found),
            &|| mirror(pod),
            &|| self.local_storage(pod),
            &|| self.unreplicated(pod),
        ];
        let mut v = Verdict::Okay;
        for f in filters {
            v = f();
            if !v.delete() {
                break;
            }
        }
        v
    }

    fn skip_deleted(&self, pod: &Value) -> Verdict {
        let Some(ts) = pod["metadata"]["deletionTimestamp"].as_str() else {
            return Verdict::Okay;
        };
        let old = ts
            .parse::<jiff::Timestamp>()
            .is_ok_and(|t| (self.now - t).get_seconds() > self.skip_wait_for_delete_timeout);
        if self.skip_wait_for_delete_timeout > 0 && old {
            Verdict::Skip
        } else {
            Verdict::Okay
        }
    }

    fn daemonset(
        &self,
        pod: &Value,
        found: &dyn Fn(&str, &str) -> Result<bool, String>,
    ) -> Verdict {
        let Some(owner) = controller_of(pod).filter(|o| o["kind"] == "DaemonSet") else {
            return Verdict::Okay;
        };
        if finished(pod) {
            return Verdict::Okay;
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = owner["name"].as_str().unwrap_or_default();
        match found(ns, name) {
            Ok(true) if self.ignore_daemonsets => Verdict::Warning(false, DAEMONSET_WARNING.into()),
            Ok(true) => Verdict::Error(DAEMONSET_FATAL.into()),
            Ok(false) => {
                let msg = format!("daemonsets.apps \"{name}\" not found");
                if self.force {
                    Verdict::Warning(true, msg)
                } else {
                    Verdict::Error(msg)
                }
            }
            Err(e) => Verdict::Error(e),
        }
    }

    fn local_storage(&self, pod: &Value) -> Verdict {
        let local = pod["spec"]["volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["emptyDir"].is_object()));
        if !local || finished(pod) {
            return Verdict::Okay;
        }
        if self.delete_emptydir_data {
            Verdict::Warning(true, LOCAL_STORAGE_WARNING.into())
        } else {
            Verdict::Error(LOCAL_STORAGE_FATAL.into())
        }
    }

    fn unreplicated(&self, pod: &Value) -> Verdict {
        if finished(pod) || controller_of(pod).is_some() {
            return Verdict::Okay;
        }
        if self.force {
            Verdict::Warning(true, UNMANAGED_WARNING.into())
        } else {
            Verdict::Error(UNMANAGED_FATAL.into())
        }
    }
}

fn mirror(pod: &Value) -> Verdict {
    if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        Verdict::Skip
    } else {
        Verdict::Okay
    }
}

fn ns_name(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Groups pods by message in first-seen order: `msg: a, b`.
fn grouped<'a>(items: impl Iterator<Item = (&'a str, String)>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (msg, pod) in items {
        match out.iter_mut().find(|(m, _)| m == msg) {
            Some((_, pods)) => pods.push(pod),
            None => out.push((msg.to_string(), vec![pod])),
        }
    }
    out
}

/// upstream `GetPodsForDeletion`: the pods to delete, the warnings line, the errors.
async fn pods_for_deletion(
    client: &client::RestClient,
    node: &str,
    a: &DrainArgs,
) -> Result<(Vec<Value>, String, Vec<String>), CmdError> {
    let mut pods = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let mut q = vec![format!(
            "fieldSelector={}",
            cli_runtime::discovery::query_escape(&format!("spec.nodeName={node}"))
        )];
        if let Some(sel) = &a.pod_selector {
            q.push(format!(
                "labelSelector={}",
                cli_runtime::discovery::query_escape(sel)
            ));
        }
        if a.chunk_size > 0 {
            q.push(format!("limit={}", a.chunk_size));
        }
        if let Some(c) = &cont {
            q.push(format!(
                "continue={}",
                cli_runtime::discovery::query_escape(c)
            ));
        }
        let list = client
            .typed_get(&format!("/api/v1/pods?{}", q.join("&")))
            .await?;
        pods.extend(list["items"].as_array().cloned().unwrap_or_default());
        cont = list["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        if cont.is_none() {
            break;
        }
    }
    // DaemonSet owners are looked up once each.
    let mut daemonsets = std::collections::HashMap::new();
    for pod in &pods {
        if let Some(o) = controller_of(pod).filter(|o| o["kind"] == "DaemonSet") {
            let ns = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = o["name"].as_str().unwrap_or_default().to_string();
            if daemonsets.contains_key(&(ns.clone(), name.clone())) {
                continue;
            }
            let found = match client
                .typed_get(&format!("/apis/apps/v1/namespaces/{ns}/daemonsets/{name}"))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e.server_message()),
            };
            daemonsets.insert((ns, name), found);
        }
    }
    let filters = Filters {
        force: a.force,
        ignore_daemonsets: a.ignore_daemonsets,
        delete_emptydir_data: a.delete_emptydir_data,
        skip_wait_for_delete_timeout: a.skip_wait_for_delete_timeout,
        now: jiff::Timestamp::now(),
    };
    let verdicts: Vec<(Value, Verdict)> = pods
        .into_iter()
        .map(|p| {
            let v = filters.verdict(&p, |ns, name| {
                daemonsets
                    .get(&(ns.to_string(), name.to_string()))
                    .cloned()
                    .unwrap_or(Ok(true))
            });
            (p, v)
        })
        .collect();
    let warnings = grouped(verdicts.iter().filter_map(|(p, v)| match v {
        Verdict::Warning(_, m) => Some((m.as_str(), ns_name(p))),
        _ => None,
    }))
    .into_iter()
    .map(|(m, pods)| format!("{m}: {}", pods.join(", ")))
    .collect::<Vec<_>>()
    .join("; ");
    let errors = grouped(verdicts.iter().filter_map(|(p, v)| match v {
        Verdict::Error(m) => Some((m.as_str(), ns_name(p))),
        _ => None,
    }))
    .into_iter()
    .map(|(m, pods)| format!("cannot delete {m}: {}", pods.join(", ")))
    .collect();
    let to_delete = verdicts
        .into_iter()
        .filter(|(_, v)| v.delete())
        .map(|(p, _)| p)
        .collect();
    Ok((to_delete, warnings, errors))
}

/// Go's `utilerrors.NewAggregate(...).Error()`.
fn aggregate(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

pub async fn drain(f: &mut Factory, a: DrainArgs) -> CmdResult {
    let dry = super::apply::dry_run_mode(&a.dry_run)?;
    let timeout = cli_runtime::config_flags::parse_duration(&a.timeout).map_err(CmdError::msg)?;
    let client = f.client().await?;
    let names = node_names(&client, &a.nodes, a.selector.as_deref(), "drain").await?;
    let (nodes, errors) = set_unschedulable(&client, names, true, dry).await;
    if !errors.is_empty() {
        return crate::error::from_messages(errors);
    }
    let mut fatal = Vec::new();
    let mut remaining = Vec::new();
    for node in nodes {
        match drain_node(&client, &node, &a, dry, timeout).await {
            Ok(()) => output::print(&format!("node/{node} drained{}\n", dry.suffix())),
            Err(e) => {
                output::flush();
                output::eprint_line(&format!(
                    "error: unable to drain node {node:?} due to error: {e}, continuing command..."
                ));
                fatal.push(e);
                remaining.push(node);
            }
        }
    }
    if !remaining.is_empty() {
        output::eprint_line("There are pending nodes to be drained:");
        for n in &remaining {
            output::eprint_line(&format!(" {n}"));
        }
        return Err(CmdError::plain(aggregate(&fatal)));
    }
    Ok(())
}

async fn drain_node(
    client: &client::RestClient,
    node: &str,
    a: &DrainArgs,
    dry: super::apply::DryRun,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let (pods, warnings, errors) = pods_for_deletion(client, node, a)
        .await
        .map_err(|e| e.text.trim_start_matches("error: ").to_string())?;
    if !errors.is_empty() {
        return Err(aggregate(&errors));
    }
    if !warnings.is_empty() {
        output::flush();
        output::eprint_line(&format!("Warning: {warnings}"));
    }
    if dry == super::apply::DryRun::Client {
        for p in &pods {
            output::print(&format!("evicting pod {} (dry run)\n", ns_name(p)));
        }
        return Ok(());
    }
    let deadline = (!timeout.is_zero()).then(|| std::time::Instant::now() + timeout);
    let tasks = pods
        .iter()
        .map(|p| evict_or_delete(client, p, a, dry, deadline));
    let results = futures::future::join_all(tasks).await;
    let errs: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if errs.is_empty() {
        return Ok(());
    }
    let err = aggregate(&errs);
    if let Ok((pending, _, _)) = pods_for_deletion(client, node, a).await
        && !pending.is_empty()
    {
        output::eprint_line(&format!(
            "There are pending pods in node {node:?} when an error occurred: {err}"
        ));
        for p in pending {
            output::eprint_line(&format!(
                "pod/{}",
                p["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    Err(err)
}

/// One pod: evicted (retrying while a disruption budget refuses) or deleted, then waited
/// for until it is gone.
async fn evict_or_delete(
    client: &client::RestClient,
    pod: &Value,
    a: &DrainArgs,
    dry: super::apply::DryRun,
    deadline: Option<std::time::Instant>,
) -> Result<(), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
    if a.grace_period >= 0 {
        options["gracePeriodSeconds"] = json!(a.grace_period);
    }
    if dry == super::apply::DryRun::Server {
        options["dryRun"] = json!(["All"]);
    }
    let timed_out = || deadline.is_some_and(|d| std::time::Instant::now() > d);
    if a.disable_eviction {
        match client
            .typed_send(http::Method::DELETE, &path, &options)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.server_message()),
        }
    } else {
        let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns}, "deleteOptions": options});
        loop {
            let suffix = if dry == super::apply::DryRun::Server {
                " (server dry run)"
            } else {
                ""
            };
            output::print(&format!("evicting pod {ns}/{name}{suffix}\n"));
            output::flush();
            if timed_out() {
                return Err(format!(
                    "error when evicting pods/{name:?} -n {ns:?}: global timeout reached: {}",
                    a.timeout
                ));
            }
            match client
                .typed_send(http::Method::POST, &format!("{path}/eviction"), &eviction)
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(client::Error::Status {
                    code: 429, message, ..
                }) => {
                    output::eprint_line(&format!(
                        "error when evicting pods/{name:?} -n {ns:?} (will retry after {}s): {message}",
                        EVICT_RETRY.as_secs()
                    ));
                    tokio::time::sleep(EVICT_RETRY).await;
                }
                Err(e) => {
                    return Err(format!(
                        "error when evicting pods/{name:?} -n {ns:?}: {}",
                        e.server_message()
                    ));
                }
            }
        }
    }
    if dry == super::apply::DryRun::Server {
        return Ok(());
    }
    // Gone when not found, or replaced by a pod of the same name.
    loop {
        match client.typed_get(&path).await {
            Err(e) if e.is_not_found() => break,
            Ok(p) if p["metadata"]["uid"] != uid.as_str() => break,
            Ok(_) | Err(_) if timed_out() => {
                return Err(format!(
                    "error when waiting for pod {name:?} in namespace {ns:?} to terminate: global timeout reached: {}",
                    a.timeout
                ));
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
    let verb = if a.disable_eviction {
        "deleted"
    } else {
        "evicted"
    };
    output::print(&format!("pod/{name} {verb}\n"));
    output::flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(force: bool, ds: bool, emptydir: bool) -> Filters {
        Filters {
            force,
            ignore_daemonsets: ds,
            delete_emptydir_data: emptydir,
            skip_wait_for_delete_timeout: 0,
            now: jiff::Timestamp::now(),
        }
    }

    #[test]
    fn upstreams_filters_decide_in_order() {
        let owned = |kind: &str| json!({"metadata": {"namespace": "n", "name": "p", "ownerReferences": [{"kind": kind, "name": "o", "controller": true}]}, "spec": {}, "status": {"phase": "Running"}});
        let found = |_: &str, _: &str| Ok(true);
        let gone = |_: &str, _: &str| Ok(false);
        assert_eq!(
            filters(false, false, false).verdict(&owned("DaemonSet"), found),
            Verdict::Error(DAEMONSET_FATAL.into())
        );
        assert_eq!(
            filters(false, true, false).verdict(&owned("DaemonSet"), found),
            Verdict::Warning(false, DAEMONSET_WARNING.into())
        );
        // An orphan of a deleted DaemonSet goes with --force; as upstream's, the later
        // filters' Okay replaces the warning.
        assert_eq!(
            filters(true, false, false).verdict(&owned("DaemonSet"), gone),
            Verdict::Okay
        );
        assert_eq!(
            filters(false, false, false).verdict(&owned("DaemonSet"), gone),
            Verdict::Error("daemonsets.apps \"o\" not found".into())
        );
        assert_eq!(
            filters(false, false, false).verdict(&owned("ReplicaSet"), found),
            Verdict::Okay
        );
        let bare = json!({"metadata": {"namespace": "n", "name": "p"}, "spec": {"volumes": [{"emptyDir": {}}]}});
        assert_eq!(
            filters(false, false, false).verdict(&bare, found),
            Verdict::Error(LOCAL_STORAGE_FATAL.into())
        );
        // Local storage allowed, then the unmanaged check decides.
        assert_eq!(
            filters(false, false, true).verdict(&bare, found),
            Verdict::Error(UNMANAGED_FATAL.into())
        );
        assert_eq!(
            filters(true, false, true).verdict(&bare, found),
            Verdict::Warning(true, UNMANAGED_WARNING.into())
        );
        let mirror =
            json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}, "spec": {}});
        assert_eq!(
            filters(false, false, false).verdict(&mirror, found),
            Verdict::Skip
        );
        let done = json!({"metadata": {}, "spec": {}, "status": {"phase": "Succeeded"}});
        assert_eq!(
            filters(false, false, false).verdict(&done, found),
            Verdict::Okay
        );
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
