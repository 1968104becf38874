//! `kubectl describe`. Upstream twin: `kubectl/pkg/cmd/describe/describe.go`.

use crate::describe;
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::query_escape;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    pub resources: Vec<String>,
    /// Filename, directory, or URL to files containing the resource to describe
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If true, display events related to the described object.
    #[arg(long = "show-events", num_args = 0..=1, default_missing_value = "true")]
    pub show_events: Option<bool>,
}

pub async fn run(f: &mut Factory, a: DescribeArgs) -> CmdResult {
    if a.resources.is_empty() && a.filenames.is_empty() {
        return Err(CmdError::plain(
            "You must specify the type of resource to describe. Use \"kubectl api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nSee 'kubectl describe -h' for help and examples",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut objects: Vec<Value> = Vec::new();
    // Objects found by name prefix print as upstream's DescribeMatchingResources does.
    let mut by_prefix = false;
    let mut errors: Vec<String> = Vec::new();
    for o in cli_runtime::resource::read_files(&a.filenames, false)
        .await
        .map_err(CmdError::msg)?
    {
        let r = f.mapping_for_object(&o.object).await?;
        let ns = o.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace)
            .to_string();
        match client
            .get_json(
                &r.object_path(
                    Some(&ns),
                    o.object["metadata"]["name"].as_str().unwrap_or_default(),
                ),
                client::JSON,
            )
            .await
        {
            Ok(v) => objects.push(v),
            Err(e) => errors.push(e.message()),
        }
    }
    let selections = if a.resources.is_empty() {
        Vec::new()
    } else {
        f.selections(&a.resources).await?
    };
    for s in &selections {
        if s.names.is_empty() {
            let mut path = s
                .resource
                .collection_path((!a.all_namespaces).then_some(namespace.as_str()));
            if let Some(l) = &a.selector {
                path = format!("{path}?labelSelector={}", query_escape(l));
            }
            let list = client.get_json(&path, client::JSON).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                let mut item = item.clone();
                item["kind"] = Value::String(s.resource.kind.clone());
                item["apiVersion"] = Value::String(s.resource.api_version());
                objects.push(item);
            }
            continue;
        }
        for name in &s.names {
            let ns = if s.resource.namespaced {
                namespace.as_str()
            } else {
                ""
            };
            match client
                .get_object(
                    &s.resource.object_path(Some(&namespace), name),
                    client::JSON,
                    ns,
                )
                .await
            {
                Ok(v) => objects.push(v),
                // `describe TYPE PREFIX`: every object whose name starts with it.
                Err(e)
                    if e.is_not_found()
                        && a.resources.len() == 2
                        && !a.resources[0].contains('/') =>
                {
                    let list = client
                        .get_json(&s.resource.collection_path(Some(&namespace)), client::JSON)
                        .await?;
                    let matching: Vec<Value> = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|i| {
                            i["metadata"]["name"]
                                .as_str()
                                .is_some_and(|n| n.starts_with(name.as_str()))
                        })
                        .map(|i| {
                            let mut i = i.clone();
                            i["kind"] = Value::String(s.resource.kind.clone());
                            i["apiVersion"] = Value::String(s.resource.api_version());
                            i
                        })
                        .collect();
                    if matching.is_empty() {
                        errors.push(e.message());
                    }
                    by_prefix = true;
                    objects.extend(matching);
                }
                Err(e) => errors.push(e.message()),
            }
        }
    }
    // v1.35 shows events for every object (v1.36 stops doing so for several).
    let show_events = a.show_events.unwrap_or(true);
    let mut first = true;
    for obj in &objects {
        let related = describe::Related::fetch(&client, obj, show_events).await;
        let text = describe::describe(obj, &related);
        if by_prefix {
            output::print(&format!("{text}\n"));
        } else if first {
            first = false;
            output::print(&text);
        } else {
            output::print(&format!("\n\n{text}"));
        }
    }
    if objects.is_empty() && errors.is_empty() {
        if a.all_namespaces {
            output::eprint_line("No resources found");
        } else {
            output::eprint_line(&format!("No resources found in {namespace} namespace."));
        }
    }
    crate::error::from_messages(errors)
}
