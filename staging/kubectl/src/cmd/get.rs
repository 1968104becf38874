//! `kubectl get`: server-side tables for people, or the objects as YAML, JSON, names,
//! JSONPath or custom columns. Upstream twin: `kubectl/pkg/cmd/get/get.go`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::{ApiResource, query_escape};
use cli_runtime::printers::{table, tabwriter::TabWriter};
use serde_json::{Value, json};

#[derive(clap::Args, Debug, Default)]
pub struct GetArgs {
    pub resources: Vec<String>,
    /// Output format. One of: (json, yaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, custom-columns, custom-columns-file, wide).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.(e.g. -l key1=value1,key2=value2,key3 in (value3)). Matching objects must satisfy all of the specified label constraints.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on, supports '=', '==', and '!='.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// When printing, show all labels as the last column (default hide labels column)
    #[arg(long = "show-labels")]
    pub show_labels: bool,
    /// Accepts a comma separated list of labels that are going to be presented as columns.
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// When using the default or custom-column output format, don't print headers (default print headers).
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// If present, list the resource type for the requested object(s).
    #[arg(long = "show-kind")]
    pub show_kind: bool,
    /// If set to true, suppress NotFound error for specific objects that do not exist.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
    /// Filename, directory, or URL to files identifying the resource to get from a server.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Return large lists in chunks rather than all at once. Pass 0 to disable.
    #[arg(long = "chunk-size", default_value_t = 500)]
    pub chunk_size: i64,
    /// If non-empty, sort list types using this field specification.
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
    /// Raw URI to request from the server.
    #[arg(long)]
    pub raw: Option<String>,
    /// If true, keep the managedFields when printing objects in JSON or YAML format.
    #[arg(long = "show-managed-fields")]
    pub show_managed_fields: bool,
    /// If specified, gets the subresource of the requested object.
    #[arg(long)]
    pub subresource: Option<String>,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested object(s), without listing/getting first.
    #[arg(long = "watch-only")]
    pub watch_only: bool,
}

/// One fetched piece: a table or an object, and the resource it came from.
pub(super) struct Info {
    pub resource: ApiResource,
    pub value: Value,
}

pub async fn run(f: &mut Factory, a: GetArgs) -> CmdResult {
    if let Some(path) = &a.raw {
        if !a.resources.is_empty() {
            return Err(CmdError::msg(
                "arguments may not be passed when --raw is specified",
            ));
        }
        let client = f.client().await?;
        let resp = client
            .request(http::Method::GET, path, "application/json, */*", None)
            .await?;
        output::print(&String::from_utf8_lossy(&resp.body));
        return Ok(());
    }
    let format = OutputFormat::parse(a.output.as_deref())?;
    if a.watch || a.watch_only {
        return super::get_watch::run(f, &a, &format).await;
    }
    if a.resources.is_empty() && a.filenames.is_empty() {
        return Err(CmdError::plain(
            "You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let human = format.is_human();
    let accept = if human { client::TABLE } else { client::JSON };
    let mut infos: Vec<Info> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let single_item;

    if !a.filenames.is_empty() {
        let objs = cli_runtime::resource::read_files(&a.filenames, a.recursive)
            .await
            .map_err(CmdError::msg)?;
        single_item = objs.len() == 1;
        for o in objs {
            let r = f.mapping_for_object(&o.object).await?;
            let ns = o.object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(&namespace)
                .to_string();
            let name = o.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            fetch_one(&client, &r, &ns, &name, accept, &a, &mut infos, &mut errors).await;
        }
    } else {
        let selections = f.selections(&a.resources).await?;
        let named: usize = selections.iter().map(|s| s.names.len()).sum();
        if named > 0 && a.selector.is_some() {
            return Err(CmdError::msg(
                "name cannot be provided when a selector is specified",
            ));
        }
        if named > 0 && a.all_namespaces {
            return Err(CmdError::msg(
                "a resource cannot be retrieved by name across all namespaces",
            ));
        }
        single_item = selections.len() == 1 && named == 1;
        for s in &selections {
            if s.names.is_empty() {
                let ns = (!a.all_namespaces).then_some(namespace.as_str());
                match list(&client, &s.resource, ns, accept, &a).await {
                    Ok(v) => infos.push(Info {
                        resource: s.resource.clone(),
                        value: v,
                    }),
                    Err(e) => errors.push(e.message()),
                }
            } else {
                for name in &s.names {
                    fetch_one(
                        &client,
                        &s.resource,
                        &namespace,
                        name,
                        accept,
                        &a,
                        &mut infos,
                        &mut errors,
                    )
                    .await;
                }
            }
        }
    }

    if human {
        print_tables(&infos, &a, &format, &namespace, errors.is_empty());
    } else {
        print_generic(&infos, &a, &format, single_item)?;
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(CmdError::plain(errors.join("\n")))
}

#[allow(clippy::too_many_arguments)]
async fn fetch_one(
    client: &RestClient,
    r: &ApiResource,
    namespace: &str,
    name: &str,
    accept: &str,
    a: &GetArgs,
    infos: &mut Vec<Info>,
    errors: &mut Vec<String>,
) {
    let mut path = r.object_path(Some(namespace), name);
    if let Some(sub) = &a.subresource {
        path = format!("{path}/{sub}");
    }
    let ns = if r.namespaced { namespace } else { "" };
    match client.get_object(&path, accept, ns).await {
        Ok(v) => infos.push(Info {
            resource: r.clone(),
            value: v,
        }),
        Err(e) if e.is_not_found() && a.ignore_not_found => {}
        Err(e) => errors.push(e.message()),
    }
}

// A whole collection, page by page (`--chunk-size`), merged into one table or list.
pub(super) async fn list(
    client: &RestClient,
    r: &ApiResource,
    namespace: Option<&str>,
    accept: &str,
    a: &GetArgs,
) -> Result<Value, client::Error> {
    let mut query = Vec::new();
    if let Some(l) = &a.selector {
        query.push(format!("labelSelector={}", query_escape(l)));
    }
    if let Some(fs) = &a.field_selector {
        query.push(format!("fieldSelector={}", query_escape(fs)));
    }
    let chunk = if a.sort_by.is_some() { 0 } else { a.chunk_size };
    if chunk > 0 {
        query.push(format!("limit={chunk}"));
    }
    if a.sort_by.is_some() && accept == client::TABLE {
        query.push("includeObject=Object".into());
    }
    let base = r.collection_path(namespace);
    let mut merged: Option<Value> = None;
    let mut cont = String::new();
    loop {
        let mut q = query.clone();
        if !cont.is_empty() {
            q.push(format!("continue={}", query_escape(&cont)));
        }
        let path = if q.is_empty() {
            base.clone()
        } else {
            format!("{base}?{}", q.join("&"))
        };
        let page = client.get_json(&path, accept).await?;
        cont = page["metadata"]["continue"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = if page["kind"] == "Table" {
            "rows"
        } else {
            "items"
        };
        match &mut merged {
            None => merged = Some(page),
            Some(m) => {
                let more = page[key].as_array().cloned().unwrap_or_default();
                if let Some(arr) = m[key].as_array_mut() {
                    arr.extend(more);
                }
                m["metadata"]["resourceVersion"] = page["metadata"]["resourceVersion"].clone();
            }
        }
        if cont.is_empty() {
            break;
        }
    }
    Ok(merged.unwrap_or(Value::Null))
}

fn print_tables(
    infos: &[Info],
    a: &GetArgs,
    format: &OutputFormat,
    namespace: &str,
    no_errors: bool,
) {
    let with_kind = a.show_kind
        || infos.windows(2).any(|w| {
            w[0].resource.group != w[1].resource.group || w[0].resource.kind != w[1].resource.kind
        });
    let mut tw = TabWriter::new();
    let mut written = false;
    let mut separator_ready = false;
    let mut last: Option<&ApiResource> = None;
    let mut last_columns: Option<Value> = None;
    let mut all_namespaced = !a.all_namespaces;
    for info in infos {
        all_namespaced &= info.resource.namespaced;
        let new_mapping = last.is_none_or(|l| l != &info.resource);
        if new_mapping {
            let out = tw.flush();
            written |= !out.is_empty();
            output::print(&out);
            tw.reset_widths();
            if last.is_some() && !a.no_headers && written {
                separator_ready = true;
            }
            last = Some(&info.resource);
            last_columns = None;
        }
        let mut table = info.value.clone();
        if table["kind"] != "Table" {
            table = util::default_table(&info.value);
        }
        let opts = table::Options {
            no_headers: a.no_headers
                || (last_columns.is_some()
                    && last_columns.as_ref() == Some(&table["columnDefinitions"])),
            wide: format.is_wide(),
            with_namespace: a.all_namespaces && info.resource.namespaced,
            show_labels: a.show_labels,
            column_labels: a.label_columns.clone(),
            with_kind: with_kind.then(|| info.resource.kind_group()),
        };
        if table["rows"].as_array().is_some_and(|r| !r.is_empty()) {
            last_columns = Some(table["columnDefinitions"].clone());
        }
        if let Some(sort) = &a.sort_by {
            util::sort_table_rows(&mut table, sort);
        }
        let text = table::render(&table, &opts);
        if !text.is_empty() && separator_ready {
            let out = tw.write("\n");
            output::print(&out);
            separator_ready = false;
        }
        let out = tw.write(&text);
        written |= !out.is_empty() || !text.is_empty();
        output::print(&out);
    }
    let out = tw.flush();
    written |= !out.is_empty();
    output::print(&out);
    if !written && !a.ignore_not_found && no_errors {
        if all_namespaced {
            output::eprint_line(&format!("No resources found in {namespace} namespace."));
        } else {
            output::eprint_line("No resources found");
        }
    }
}

fn print_generic(infos: &[Info], a: &GetArgs, format: &OutputFormat, single: bool) -> CmdResult {
    let mut items: Vec<Value> = Vec::new();
    for info in infos {
        let v = &info.value;
        if v["items"].is_array() && v["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
            let kind = v["kind"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches("List")
                .to_string();
            for item in v["items"].as_array().into_iter().flatten() {
                let mut item = item.clone();
                if item.get("kind").is_none() {
                    let mut with_type = json!({"apiVersion": v["apiVersion"], "kind": kind});
                    if let (Some(m), Some(src)) = (with_type.as_object_mut(), item.as_object()) {
                        for (k, x) in src {
                            m.insert(k.clone(), x.clone());
                        }
                    }
                    item = with_type;
                }
                items.push(item);
            }
        } else {
            items.push(v.clone());
        }
    }
    // Only JSON and YAML leave managedFields out (templates and JSONPath see them).
    if !a.show_managed_fields && matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        for item in &mut items {
            if let Some(m) = item["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
    if let Some(sort) = &a.sort_by {
        util::sort_items(&mut items, sort)?;
    }
    if items.is_empty() && a.ignore_not_found {
        return Ok(());
    }
    // One object asked for and not there: only the error.
    if single && items.is_empty() {
        return Ok(());
    }
    let obj = if single && items.len() == 1 {
        items.remove(0)
    } else {
        // Items are flattened out of their lists, so the list kubectl builds has no
        // resourceVersion of its own.
        json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
    };
    util::print_object(&obj, format, a.no_headers)
}
