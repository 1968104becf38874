//! `kubectl wait --for=condition=C[=V] | delete | jsonpath='{…}'=V`. Upstream twin:
//! `kubectl/pkg/cmd/wait/wait.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::printers::jsonpath;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    pub resources: Vec<String>,
    /// The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]].
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// The length of time to wait before giving up.  Zero means check once and don't wait, negative means wait for a week.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
}

enum WaitFor {
    Delete,
    Create,
    Condition(String, String),
    JsonPath(jsonpath::Template, Option<String>),
}

fn parse_for(s: &str) -> Result<WaitFor, CmdError> {
    if s == "delete" {
        return Ok(WaitFor::Delete);
    }
    if s == "create" {
        return Ok(WaitFor::Create);
    }
    if let Some(c) = s.strip_prefix("condition=") {
        let (name, value) = c.split_once('=').unwrap_or((c, "true"));
        return Ok(WaitFor::Condition(
            name.to_lowercase(),
            value.to_lowercase(),
        ));
    }
    if let Some(j) = s.strip_prefix("jsonpath=") {
        let (expr, value) = match j.rfind("}=") {
            Some(i) => (&j[..=i], Some(j[i + 2..].to_string())),
            None => (j, None),
        };
        let rel = jsonpath::relaxed(expr).map_err(CmdError::msg)?;
        return Ok(WaitFor::JsonPath(
            jsonpath::Template::parse(&rel).map_err(CmdError::msg)?,
            value,
        ));
    }
    Err(CmdError::msg(format!("unrecognized condition: {s:?}")))
}

fn met(c: &WaitFor, obj: &Value) -> bool {
    match c {
        WaitFor::Delete => false,
        WaitFor::Create => true,
        WaitFor::Condition(name, value) => obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|cond| {
                cond["type"]
                    .as_str()
                    .is_some_and(|t| t.to_lowercase() == *name)
                    && cond["status"]
                        .as_str()
                        .is_some_and(|s| s.to_lowercase() == *value)
                    && cond["observedGeneration"]
                        .as_i64()
                        .is_none_or(|g| Some(g) == obj["metadata"]["generation"].as_i64())
            }),
        WaitFor::JsonPath(t, want) => {
            let found: Vec<Value> = t
                .find(obj)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
            match want {
                None => !found.is_empty(),
                Some(w) => found.len() == 1 && jsonpath::print_value(&found[0]) == *w,
            }
        }
    }
}

pub async fn run(f: &mut Factory, a: WaitArgs) -> CmdResult {
    let Some(for_) = &a.for_ else {
        return Err(CmdError::msg("--for must be specified"));
    };
    let cond = parse_for(for_)?;
    let timeout = match a.timeout.trim_start_matches('-') {
        t if a.timeout.starts_with('-') => {
            let _ = t;
            Duration::from_secs(7 * 24 * 3600)
        }
        t => cli_runtime::config_flags::parse_duration(t).map_err(CmdError::msg)?,
    };
    let deadline = Instant::now() + timeout;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets = Vec::new();
    for s in f.selections(&a.resources).await? {
        if s.names.is_empty() {
            // The builder lists a type only for -l or --all.
            if a.selector.is_none() && !a.all {
                return Err(CmdError::msg(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            for name in
                super::util::list_names(&client, &s.resource, &namespace, a.selector.as_deref())
                    .await?
            {
                targets.push((s.resource.clone(), name));
            }
        }
        for n in s.names {
            targets.push((s.resource.clone(), n));
        }
    }
    if targets.is_empty() {
        return Err(CmdError::msg("no matching resources found"));
    }
    for (r, name) in targets {
        let path = r.object_path(Some(&namespace), &name);
        let mut delay = Duration::from_millis(100);
        let mut seen = false;
        loop {
            match client.get_json(&path, client::JSON).await {
                Err(e) if e.is_not_found() => {
                    // Never there: nothing to report, as upstream's wait for delete.
                    if matches!(cond, WaitFor::Delete) {
                        if seen {
                            output::print(&format!("{}/{name} condition met\n", r.kind_group()));
                        }
                        break;
                    }
                    if !matches!(cond, WaitFor::Create) || Instant::now() > deadline {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
                Ok(obj) if met(&cond, &obj) => {
                    output::print(&format!("{}/{name} condition met\n", r.kind_group()));
                    break;
                }
                Ok(_) => seen = true,
            }
            if Instant::now() >= deadline {
                return Err(CmdError::msg(format!(
                    "timed out waiting for the condition on {}/{name}",
                    r.resource
                )));
            }
            output::flush();
            tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
    Ok(())
}
