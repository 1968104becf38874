//! `kubectl events`: the namespace's (or `-A`) core/v1 Events, oldest first.
//! Upstream twin: `kubectl/pkg/cmd/events`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::discovery::query_escape;
use cli_runtime::printers::tabwriter::TabWriter;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Filter events to only those pertaining to the specified resource.
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// Output only events of given types.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// When using the default output format, don't print headers.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

fn time_of(e: &Value) -> String {
    e["series"]["lastObservedTime"]
        .as_str()
        .or(e["lastTimestamp"].as_str())
        .or(e["eventTime"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub async fn run(f: &mut Factory, a: EventsArgs) -> CmdResult {
    for t in &a.types {
        if t != "Normal" && t != "Warning" {
            return Err(CmdError::msg("valid --types are Normal or Warning"));
        }
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut q = vec!["limit=500".to_string()];
    if let Some(target) = &a.for_ {
        let (ty, name) = target.split_once('/').ok_or_else(|| {
            CmdError::msg("arguments in resource/name form must have a single resource and name")
        })?;
        let r = cli_runtime::resource::mapping(f.discovery().await?, ty).map_err(CmdError::msg)?;
        q.push(format!(
            "fieldSelector={}",
            query_escape(&format!(
                "involvedObject.apiVersion={},involvedObject.kind={},involvedObject.name={name}",
                r.api_version(),
                r.kind
            ))
        ));
    }
    let base = if a.all_namespaces {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{namespace}/events")
    };
    let list = client.typed_get(&format!("{base}?{}", q.join("&"))).await?;
    let mut events: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| a.types.is_empty() || a.types.iter().any(|t| e["type"] == t.as_str()))
        .cloned()
        .collect();
    if events.is_empty() {
        if a.all_namespaces {
            output::eprint_line("No events found.");
        } else {
            output::eprint_line(&format!("No events found in {namespace} namespace."));
        }
        return Ok(());
    }
    events.sort_by_key(time_of);
    let mut text = String::new();
    if !a.no_headers {
        if a.all_namespaces {
            text.push_str("NAMESPACE\t");
        }
        text.push_str("LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n");
    }
    for e in &events {
        if a.all_namespaces {
            text.push_str(&format!(
                "{}\t",
                e["metadata"]["namespace"].as_str().unwrap_or_default()
            ));
        }
        text.push_str(&format!(
            "{}\t{}\t{}\t{}/{}\t{}\n",
            crate::describe::event_interval(e),
            e["type"].as_str().unwrap_or_default(),
            e["reason"].as_str().unwrap_or_default(),
            e["involvedObject"]["kind"].as_str().unwrap_or_default(),
            e["involvedObject"]["name"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default().trim()
        ));
    }
    let mut tw = TabWriter::new();
    output::print(&tw.write(&text));
    output::print(&tw.flush());
    Ok(())
}
