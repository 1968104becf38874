//! `kubectl get --watch` / `--watch-only`: the list (unless watch-only), then each
//! change as a table row in the same columns (widths remembered), or as an object in
//! the other formats. Upstream twin: `kubectl/pkg/cmd/get/get.go` (`watch`).

use super::get::GetArgs;
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::query_escape;
use cli_runtime::printers::{table, tabwriter::TabWriter};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};

pub async fn run(f: &mut Factory, a: &GetArgs, format: &OutputFormat) -> CmdResult {
    let selections = f.selections(&a.resources).await?;
    if selections.len() != 1 {
        return Err(CmdError::msg("you may only specify a single resource type"));
    }
    let sel = &selections[0];
    if sel.names.len() > 1 {
        return Err(CmdError::msg(
            "watch is only supported on individual resources and resource collections, but 2 resources were found",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let ns = (!a.all_namespaces).then_some(namespace.as_str());
    let human = format.is_human();
    let accept = if human { client::TABLE } else { client::JSON };
    let mut field_selector = a.field_selector.clone();
    if let Some(name) = sel.names.first() {
        let by_name = format!("metadata.name={name}");
        field_selector = Some(match field_selector {
            Some(fs) => format!("{fs},{by_name}"),
            None => by_name,
        });
    }
    let list_args = GetArgs {
        selector: a.selector.clone(),
        field_selector: field_selector.clone(),
        chunk_size: a.chunk_size,
        ..Default::default()
    };
    let initial = super::get::list(&client, &sel.resource, ns, accept, &list_args).await?;
    let rv = initial["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut tw = TabWriter::new();
    let opts = table::Options {
        no_headers: a.no_headers,
        wide: format.is_wide(),
        with_namespace: a.all_namespaces && sel.resource.namespaced,
        show_labels: a.show_labels,
        column_labels: a.label_columns.clone(),
        with_kind: None,
    };
    let mut columns = initial["columnDefinitions"].clone();
    let mut printed_header = false;
    if !a.watch_only {
        if human {
            let text = table::render(&initial, &opts);
            printed_header = !text.is_empty();
            output::print(&tw.write(&text));
            output::print(&tw.flush());
        } else {
            for item in initial["items"].as_array().into_iter().flatten() {
                print_object(item, &sel.resource, format, a.no_headers)?;
            }
        }
        output::flush();
    }
    let mut q = vec![
        "watch=true".to_string(),
        format!("resourceVersion={}", query_escape(&rv)),
    ];
    if let Some(l) = &a.selector {
        q.push(format!("labelSelector={}", query_escape(l)));
    }
    if let Some(fs) = &field_selector {
        q.push(format!("fieldSelector={}", query_escape(fs)));
    }
    let path = format!("{}?{}", sel.resource.collection_path(ns), q.join("&"));
    let resp = client.stream(&path, accept).await?;
    let mut body = resp.into_body().into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CmdError::msg(format!("reading the watch: {e}")))?;
        pending.extend_from_slice(&chunk);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if event["type"] == "ERROR" {
                return Err(CmdError::plain(
                    client::status_error(
                        http::StatusCode::from_u16(
                            event["object"]["code"].as_u64().unwrap_or(500) as u16
                        )
                        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
                        &serde_json::to_vec(&event["object"]).unwrap_or_default(),
                    )
                    .message(),
                ));
            }
            if event["type"] == "BOOKMARK" {
                continue;
            }
            let obj = &event["object"];
            if human {
                let mut t = obj.clone();
                if t["columnDefinitions"]
                    .as_array()
                    .is_none_or(|c| c.is_empty())
                {
                    t["columnDefinitions"] = columns.clone();
                } else {
                    columns = t["columnDefinitions"].clone();
                }
                let row_opts = table::Options {
                    no_headers: a.no_headers || printed_header,
                    ..opts.clone()
                };
                let text = table::render(&t, &row_opts);
                printed_header |= !text.is_empty();
                output::print(&tw.write(&text));
                output::print(&tw.flush());
            } else {
                print_object(obj, &sel.resource, format, a.no_headers)?;
            }
            output::flush();
        }
    }
    Ok(())
}

fn print_object(
    obj: &Value,
    r: &cli_runtime::discovery::ApiResource,
    format: &OutputFormat,
    no_headers: bool,
) -> CmdResult {
    let mut obj = obj.clone();
    if obj.get("kind").is_none() {
        obj["kind"] = json!(r.kind);
        obj["apiVersion"] = json!(r.api_version());
    }
    if matches!(format, OutputFormat::Json | OutputFormat::Yaml)
        && let Some(m) = obj["metadata"].as_object_mut()
    {
        m.remove("managedFields");
    }
    if matches!(format, OutputFormat::Yaml) {
        output::print("---\n");
    }
    util::print_object(&obj, format, no_headers)
}
