//! `kubectl taint nodes NAME KEY[=VALUE]:EFFECT ... [KEY[:EFFECT]-]`. Upstream twin:
//! `kubectl/pkg/cmd/taint/taint.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct TaintArgs {
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// NODE NAME KEY_1=VAL_1:TAINT_EFFECT_1 ... KEY_N=VAL_N:TAINT_EFFECT_N
    pub args: Vec<String>,
    /// If true, allow taints to be overwritten, otherwise reject taint updates that overwrite existing taints.
    #[arg(long)]
    pub overwrite: bool,
    /// Select all nodes in the cluster
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

struct Change {
    key: String,
    value: Option<String>,
    effect: Option<String>,
}

fn parse_taint(spec: &str, removal: bool) -> Result<Change, CmdError> {
    let (kv, effect) = match spec.rsplit_once(':') {
        Some((kv, e)) => (kv, Some(e.to_string())),
        None if removal => (spec, None),
        None => {
            return Err(CmdError::msg(format!(
                "invalid taint spec: {spec}, unknown taint effect"
            )));
        }
    };
    if let Some(e) = &effect
        && !EFFECTS.contains(&e.as_str())
    {
        return Err(CmdError::msg(format!(
            "invalid taint effect: {e}, unsupported taint effect"
        )));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), None),
    };
    Ok(Change { key, value, effect })
}

pub async fn run(f: &mut Factory, a: TaintArgs) -> CmdResult {
    if a.args.is_empty() {
        return Err(CmdError::msg(
            "one or more resources must be specified as <resource> <name>",
        ));
    }
    // Upstream takes `node NAME...` only; `node/NAME` is looked up as a type.
    let ty = &a.args[0];
    if ty.contains('/') {
        return Err(CmdError::plain(format!(
            "the server doesn't have a resource type {ty:?}"
        )));
    }
    if !matches!(ty.as_str(), "node" | "nodes" | "no") {
        return Err(CmdError::msg(format!(
            "invalid resource type {ty}, only node types are supported"
        )));
    }
    let mut names = Vec::new();
    let mut rest = Vec::new();
    for x in &a.args[1..] {
        if x.contains(':') || x.contains('=') || x.ends_with('-') {
            rest.push(x.clone());
        } else if rest.is_empty() {
            names.push(x.clone());
        } else {
            return Err(CmdError::msg(format!(
                "all resources must be specified before taint changes: {x}"
            )));
        }
    }
    let usage = |e: CmdError| {
        CmdError::plain(format!(
            "{}\nSee 'kubectl taint -h' for help and examples",
            e.text
        ))
    };
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for r in &rest {
        match r.strip_suffix('-') {
            Some(spec) => remove.push(parse_taint(spec, true).map_err(usage)?),
            None => add.push(parse_taint(r, false).map_err(usage)?),
        }
    }
    if add.is_empty() && remove.is_empty() {
        return Err(CmdError::msg("at least one taint update is required"));
    }
    let client = f.client().await?;
    if a.all || a.selector.is_some() {
        let q = a
            .selector
            .as_ref()
            .map(|l| format!("?labelSelector={}", cli_runtime::discovery::query_escape(l)))
            .unwrap_or_default();
        let list = client
            .get_json(&format!("/api/v1/nodes{q}"), client::JSON)
            .await?;
        names.extend(
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string)),
        );
    }
    let mut errors = Vec::new();
    for name in names {
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
        let old: Vec<Value> = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let same = |t: &Value, c: &Change| {
            t["key"] == c.key.as_str() && t["effect"] == c.effect.as_deref().unwrap_or("")
        };
        let existing: Vec<String> = add
            .iter()
            .filter(|c| old.iter().any(|t| same(t, c)))
            .map(|c| c.key.clone())
            .collect();
        if !a.overwrite && !existing.is_empty() {
            return Err(CmdError::msg(format!(
                "node {name} already has {} taint(s) with same effect(s) and --overwrite is false",
                existing.join(",")
            )));
        }
        // Upstream's reorganizeTaints: the new taints first, then the old ones they do
        // not replace, then the removals.
        let mut taints: Vec<Value> = add
            .iter()
            .map(|c| {
                let mut t = json!({"key": c.key, "effect": c.effect});
                if let Some(v) = &c.value {
                    t["value"] = json!(v);
                }
                t
            })
            .collect();
        for t in &old {
            if !add.iter().any(|c| same(t, c)) {
                taints.push(t.clone());
            }
        }
        let added = old.len() != taints.len();
        let mut deleted = false;
        let mut not_found = Vec::new();
        for c in &remove {
            let n = taints.len();
            taints.retain(|t| {
                !(t["key"] == c.key.as_str()
                    && c.effect.as_ref().is_none_or(|e| t["effect"] == e.as_str()))
            });
            deleted = taints.len() != n;
            if !deleted {
                let spec = match &c.effect {
                    Some(e) => format!("{}:{e}", c.key),
                    None => c.key.clone(),
                };
                not_found.push(format!("taint {spec:?} not found"));
            }
        }
        if !not_found.is_empty() {
            errors.push(format!("error: {}", not_found.join("\n")));
            continue;
        }
        let verb = if (added && deleted) || a.overwrite {
            "modified"
        } else if added {
            "tainted"
        } else {
            "untainted"
        };
        let patch = if taints.is_empty() {
            json!({"spec": {"taints": null}})
        } else {
            json!({"spec": {"taints": taints}})
        };
        if let Err(e) = client
            .send_json(
                http::Method::PATCH,
                &format!(
                    "{path}?fieldManager={}",
                    a.field_manager.query("kubectl-taint")
                ),
                "application/merge-patch+json",
                &patch,
            )
            .await
        {
            errors.push(e.message());
            continue;
        }
        output::print(&format!("node/{name} {verb}\n"));
    }
    crate::error::from_messages(errors)
}
