//! Helpers the commands share: `-o` formats, printing objects, sorting, and the
//! name/age table for objects the server sends no table for. Upstream twins:
//! `kubectl/pkg/cmd/get/get_flags.go`, `kubectl/pkg/cmd/get/sorter.go`.

use crate::error::{CmdError, CmdResult};
use crate::output;
use cli_runtime::printers::{self, custom_columns, gotemplate, jsonpath, tabwriter, yaml};
use serde_json::{Value, json};

pub use cli_runtime::printers::custom_columns::go_v;

#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Table,
    Wide,
    Yaml,
    Json,
    Name,
    JsonPath(String),
    /// `-o jsonpath-as-json`: each action's results as a JSON array.
    JsonPathAsJson(String),
    GoTemplate(String),
    CustomColumns(String),
    CustomColumnsFile(String),
}

impl OutputFormat {
    /// A command's `-o`: none when the flag is absent (the command's own report).
    pub fn from_flag(o: Option<&str>) -> Result<Option<OutputFormat>, CmdError> {
        o.map(|o| OutputFormat::parse(Some(o))).transpose()
    }

    pub fn parse(o: Option<&str>) -> Result<OutputFormat, CmdError> {
        let Some(o) = o else {
            return Ok(OutputFormat::Table);
        };
        let (kind, arg) = match o.split_once('=') {
            Some((k, a)) => (k, Some(a.to_string())),
            None => (o, None),
        };
        Ok(match (kind, arg) {
            ("", None) => OutputFormat::Table,
            ("wide", None) => OutputFormat::Wide,
            ("yaml", None) => OutputFormat::Yaml,
            ("json", None) => OutputFormat::Json,
            ("name", None) => OutputFormat::Name,
            ("jsonpath", Some(t)) => OutputFormat::JsonPath(t),
            ("jsonpath-file", Some(p)) => OutputFormat::JsonPath(
                std::fs::read_to_string(&p)
                    .map_err(|e| CmdError::msg(format!("error reading --template {p}, {e}")))?,
            ),
            ("jsonpath-as-json", Some(t)) => OutputFormat::JsonPathAsJson(t),
            ("go-template" | "template", Some(t)) => OutputFormat::GoTemplate(t),
            ("go-template-file" | "templatefile", Some(p)) => OutputFormat::GoTemplate(
                std::fs::read_to_string(&p)
                    .map_err(|e| CmdError::msg(format!("error reading --template {p}, {e}")))?,
            ),
            ("custom-columns", Some(s)) => OutputFormat::CustomColumns(s),
            ("custom-columns-file", Some(p)) => OutputFormat::CustomColumnsFile(
                std::fs::read_to_string(&p)
                    .map_err(|e| CmdError::msg(format!("error reading template {p}, {e}")))?,
            ),
            ("go-template" | "template", None) => {
                return Err(CmdError::msg(
                    "template format specified but no template given",
                ));
            }
            ("jsonpath" | "jsonpath-as-json" | "custom-columns", None) => {
                return Err(CmdError::msg(format!(
                    "{kind} format specified but no template given"
                )));
            }
            _ => {
                return Err(CmdError::msg(format!(
                    "unable to match a printer suitable for the output format \"{o}\", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
                )));
            }
        })
    }

    pub fn is_human(&self) -> bool {
        matches!(self, OutputFormat::Table | OutputFormat::Wide)
    }

    pub fn is_wide(&self) -> bool {
        matches!(self, OutputFormat::Wide)
    }
}

/// Prints an object (or a `List`) in a non-table format.
pub fn print_object(obj: &Value, format: &OutputFormat, no_headers: bool) -> CmdResult {
    match format {
        OutputFormat::Yaml => output::print(&yaml::to_yaml(obj)),
        OutputFormat::Json => output::print(&printers::to_json(obj)),
        OutputFormat::Name => {
            for item in list_items(obj) {
                output::print(&printers::name_line(item));
                output::print("\n");
            }
        }
        OutputFormat::JsonPath(t) => {
            let tpl = jsonpath::Template::parse(t)
                .map_err(|e| CmdError::msg(format!("error parsing jsonpath {t}, {e}")))?;
            let text = tpl
                .execute(obj)
                .map_err(|e| CmdError::msg(format!("error executing jsonpath {t:?}: Error executing template: {e}. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{t}\n\tobject given to jsonpath engine was:\n\t\t{}\n\n", printers::to_compact_json(obj))))?;
            output::print(&text);
        }
        OutputFormat::JsonPathAsJson(t) => {
            let tpl = jsonpath::Template::parse(t)
                .map_err(|e| CmdError::msg(format!("error parsing jsonpath {t}, {e}")))?;
            let groups = tpl
                .find(obj)
                .map_err(|e| CmdError::msg(format!("error executing jsonpath {t:?}: {e}")))?;
            for group in groups {
                output::print(&printers::to_json(&Value::Array(group)));
            }
        }
        OutputFormat::GoTemplate(t) => {
            let tpl = gotemplate::Template::parse(t)
                .map_err(|e| CmdError::msg(format!("error parsing template {t}, {e}")))?;
            match tpl.execute(obj) {
                Ok(text) => output::print(&text),
                Err(e) => {
                    output::print(&format!(
                        "Error executing template: {e}. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{t}\n\traw data was:\n\t\t{}\n\tobject given to template engine was:\n\t\t{}\n\n",
                        printers::to_compact_json(obj),
                        gotemplate::go_print(obj)
                    ));
                    return Err(CmdError::msg(format!(
                        "error executing template {t:?}: {e}"
                    )));
                }
            }
        }
        OutputFormat::CustomColumns(spec) => {
            let cols = custom_columns::parse_spec(spec).map_err(CmdError::msg)?;
            let items: Vec<Value> = list_items(obj).into_iter().cloned().collect();
            let text = custom_columns::render(&cols, &items, no_headers).map_err(CmdError::msg)?;
            output::print(&tabwriter::align(&text));
        }
        OutputFormat::CustomColumnsFile(file) => {
            let cols = custom_columns::parse_file(file).map_err(CmdError::msg)?;
            let items: Vec<Value> = list_items(obj).into_iter().cloned().collect();
            let text = custom_columns::render(&cols, &items, no_headers).map_err(CmdError::msg)?;
            output::print(&tabwriter::align(&text));
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let text = printers::table::render(&default_table(obj), &Default::default());
            output::print(&tabwriter::align(&text));
        }
    }
    Ok(())
}

/// The items of a list, or the object itself.
pub fn list_items(obj: &Value) -> Vec<&Value> {
    match obj["items"].as_array() {
        Some(items) if obj["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
            items.iter().collect()
        }
        _ => vec![obj],
    }
}

/// `labels.FormatLabels` without the `<none>` (selectors print empty).
pub fn format_labels_plain(labels: &Value) -> String {
    match labels.as_object() {
        Some(m) if !m.is_empty() => printers::table::format_labels(labels),
        _ => String::new(),
    }
}

/// NAME and AGE, for objects without a server-side table.
pub fn default_table(obj: &Value) -> Value {
    let rows: Vec<Value> = list_items(obj)
        .into_iter()
        .map(|o| {
            json!({"cells": [o["metadata"]["name"], age(o["metadata"]["creationTimestamp"].as_str())],
                   "object": {"metadata": o["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Age", "type": "string", "priority": 0}], "rows": rows})
}

/// `duration.HumanDuration` since an RFC 3339 time (`<unknown>` without one).
pub fn age(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    human_duration(secs)
}

/// apimachinery's `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn sort_key(v: &Value, field: &str) -> Result<Option<Value>, CmdError> {
    let expr = jsonpath::relaxed(field).map_err(CmdError::msg)?;
    let tpl = jsonpath::Template::parse(&expr).map_err(CmdError::msg)?;
    let found = tpl.find(v).map_err(CmdError::msg)?;
    Ok(found.into_iter().flatten().next())
}

fn compare(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(x), Some(y)) => jsonpath::print_value(x).cmp(&jsonpath::print_value(y)),
    }
}

/// `--sort-by` over objects.
pub fn sort_items(items: &mut [Value], field: &str) -> CmdResult {
    let mut keyed: Vec<(Option<Value>, Value)> = Vec::new();
    for it in items.iter() {
        keyed.push((sort_key(it, field)?, it.clone()));
    }
    keyed.sort_by(|a, b| compare(&a.0, &b.0));
    for (slot, (_, v)) in items.iter_mut().zip(keyed) {
        *slot = v;
    }
    Ok(())
}

/// `--sort-by` over a table whose rows carry their objects.
pub fn sort_table_rows(table: &mut Value, field: &str) {
    if let Some(rows) = table["rows"].as_array_mut() {
        let mut keyed: Vec<(Option<Value>, Value)> = rows
            .iter()
            .map(|r| (sort_key(&r["object"], field).ok().flatten(), r.clone()))
            .collect();
        keyed.sort_by(|a, b| compare(&a.0, &b.0));
        *rows = keyed.into_iter().map(|(_, r)| r).collect();
    }
}

/// How Go words the common file errors.
pub fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The builder's `RequireNamespace` check: with `--namespace` given, a namespaced object
/// from a file must name that namespace or none.
pub fn check_object_namespace(
    obj: &Value,
    namespaced: bool,
    explicit: bool,
    namespace: &str,
) -> Result<(), CmdError> {
    match obj["metadata"]["namespace"].as_str() {
        Some(n) if namespaced && explicit && n != namespace => Err(CmdError::msg(format!(
            "the namespace from the provided object \"{n}\" does not match the namespace \"{namespace}\". You must pass '--namespace={n}' to perform this operation."
        ))),
        _ => Ok(()),
    }
}

/// The names of a type's objects in `namespace`, optionally by label selector (the
/// builder's listing for `TYPE -l …` or `TYPE --all`).
pub async fn list_names(
    client: &cli_runtime::client::RestClient,
    r: &cli_runtime::discovery::ApiResource,
    namespace: &str,
    selector: Option<&str>,
) -> Result<Vec<String>, CmdError> {
    let mut path = r.collection_path(Some(namespace));
    if let Some(l) = selector {
        path.push_str(&format!(
            "?labelSelector={}",
            cli_runtime::discovery::query_escape(l)
        ));
    }
    let list = client.get_json(&path, cli_runtime::client::JSON).await?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_upstreams() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(9 * 3600), "9h");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }

    #[test]
    fn formats() {
        assert_eq!(
            OutputFormat::parse(Some("jsonpath={.a}")).unwrap(),
            OutputFormat::JsonPath("{.a}".into())
        );
        assert!(OutputFormat::parse(Some("xml")).is_err());
    }
}
