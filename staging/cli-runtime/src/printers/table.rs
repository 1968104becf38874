//! Server-side tables (`meta.k8s.io/v1` Table) as kubectl prints them: upper-case
//! headers, priority-0 columns unless `-o wide`, NAMESPACE first with
//! `--all-namespaces`, `-L` and `--show-labels` columns last, `kind/name` when several
//! kinds are printed. Emits tab-separated lines for a [`super::tabwriter::TabWriter`].
//! Upstream twin: `cli-runtime/pkg/printers/tableprinter.go`.

use serde_json::Value;

#[derive(Default, Clone)]
pub struct Options {
    pub no_headers: bool,
    pub wide: bool,
    pub with_namespace: bool,
    pub show_labels: bool,
    pub column_labels: Vec<String>,
    /// `kind.group` to prefix names with (`deployment.apps`), when several kinds print.
    pub with_kind: Option<String>,
}

/// Tab-separated header and rows; empty when the table has no rows.
pub fn render(table: &Value, opts: &Options) -> String {
    let columns = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rows = table["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    let visible: Vec<usize> = (0..columns.len())
        .filter(|&i| opts.wide || columns[i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let name_column = opts.with_kind.as_ref().and_then(|_| {
        columns
            .iter()
            .position(|c| c["format"] == "name" && c["type"] == "string")
    });
    let mut out = String::new();
    if !opts.no_headers {
        let mut headers = Vec::new();
        if opts.with_namespace {
            headers.push("NAMESPACE".to_string());
        }
        for &i in &visible {
            headers.push(
                columns[i]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase(),
            );
        }
        headers.extend(label_headers(&opts.column_labels));
        if opts.show_labels {
            headers.push("LABELS".into());
        }
        out.push_str(&headers.join("\t"));
        out.push('\n');
    }
    for row in &rows {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let meta = &row["object"]["metadata"];
        let mut line = Vec::new();
        if opts.with_namespace {
            line.push(meta["namespace"].as_str().unwrap_or_default().to_string());
        }
        for &i in &visible {
            let mut text = cells.get(i).map(cell_text).unwrap_or_default();
            if Some(i) == name_column {
                text = format!("{}/{text}", opts.with_kind.as_deref().unwrap_or_default());
            }
            line.push(text);
        }
        let labels = meta["labels"].as_object();
        for key in &opts.column_labels {
            line.push(
                labels
                    .and_then(|l| l.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        if opts.show_labels {
            line.push(format_labels(&meta["labels"]));
        }
        out.push_str(&line.join("\t"));
        out.push('\n');
    }
    out
}

/// `-L app.kubernetes.io/name` heads its column `NAME`.
pub fn label_headers(labels: &[String]) -> Vec<String> {
    labels
        .iter()
        .map(|l| l.rsplit('/').next().unwrap_or_default().to_uppercase())
        .collect()
}

/// `labels.FormatLabels`: `a=b,c=d` sorted, `<none>` when empty.
pub fn format_labels(labels: &Value) -> String {
    match labels.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

// A cell: text up to its first line break (then "..."), numbers as Go prints them.
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::Null => String::new(),
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        other => super::custom_columns::go_v(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Value {
        json!({
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "priority": 0},
                {"name": "IP", "type": "string", "priority": 1},
            ],
            "rows": [{"cells": ["p", "1/1", "10.0.0.1"],
                      "object": {"metadata": {"name": "p", "namespace": "ns", "labels": {"b": "2", "a": "1"}}}}],
        })
    }

    #[test]
    fn narrow_wide_and_decorated() {
        assert_eq!(
            render(&table(), &Options::default()),
            "NAME\tREADY\np\t1/1\n"
        );
        let wide = Options {
            wide: true,
            ..Default::default()
        };
        assert_eq!(
            render(&table(), &wide),
            "NAME\tREADY\tIP\np\t1/1\t10.0.0.1\n"
        );
        let all = Options {
            with_namespace: true,
            show_labels: true,
            column_labels: vec!["example.com/a".into()],
            with_kind: Some("pod".into()),
            ..Default::default()
        };
        assert_eq!(
            render(&table(), &all),
            "NAMESPACE\tNAME\tREADY\tA\tLABELS\nns\tpod/p\t1/1\t\ta=1,b=2\n"
        );
    }

    #[test]
    fn no_rows_print_nothing() {
        assert_eq!(
            render(
                &json!({"columnDefinitions": [], "rows": []}),
                &Options::default()
            ),
            ""
        );
    }
}
