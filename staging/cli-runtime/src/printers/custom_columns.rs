//! `-o custom-columns=HEADER:path,...` and `-o custom-columns-file=`. Upstream twin:
//! `kubectl/pkg/cmd/get/customcolumn.go`.

use super::jsonpath::{Template, relaxed};
use serde_json::Value;

pub struct Column {
    pub header: String,
    template: Template,
}

/// Parses `NAME:.metadata.name,IMAGE:.spec.containers[*].image`.
pub fn parse_spec(spec: &str) -> Result<Vec<Column>, String> {
    if spec.is_empty() {
        return Err("custom-columns format specified but no custom columns given".into());
    }
    spec.split(',')
        .map(|part| {
            let (header, path) = part.split_once(':').ok_or_else(|| {
                format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                )
            })?;
            Ok(Column {
                header: header.to_string(),
                template: Template::parse(&relaxed(path)?)?,
            })
        })
        .collect()
}

/// The two-line file form: headers, then paths, whitespace-separated.
pub fn parse_file(text: &str) -> Result<Vec<Column>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let headers: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let paths: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if headers.len() != paths.len() {
        return Err(format!(
            "expected same number of headers and paths, got {} headers and {} paths",
            headers.len(),
            paths.len()
        ));
    }
    headers
        .into_iter()
        .zip(paths)
        .map(|(h, p)| {
            Ok(Column {
                header: h.to_string(),
                template: Template::parse(&relaxed(p)?)?,
            })
        })
        .collect()
}

/// Tab-separated lines (header unless `no_headers`) for `objects`.
pub fn render(columns: &[Column], objects: &[Value], no_headers: bool) -> Result<String, String> {
    let mut out = String::new();
    if !no_headers {
        let headers: Vec<&str> = columns.iter().map(|c| c.header.as_str()).collect();
        out.push_str(&headers.join("\t"));
        out.push('\n');
    }
    for obj in objects {
        let mut cells = Vec::new();
        for c in columns {
            let found = c.template.find(obj)?;
            let values: Vec<String> = found.iter().flatten().map(go_v).collect();
            cells.push(if values.is_empty() {
                "<none>".to_string()
            } else {
                values.join(",")
            });
        }
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    Ok(out)
}

/// Go's `fmt.Sprintf("%v", v)` for decoded JSON.
pub fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, x)| format!("{k}:{}", go_v(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => super::jsonpath::print_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_join_many_values_and_mark_missing_ones() {
        let cols =
            parse_spec("NAME:.metadata.name,IMAGES:.spec.containers[*].image,NODE:.spec.nodeName")
                .unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        assert_eq!(
            render(&cols, &[pod], false).unwrap(),
            "NAME\tIMAGES\tNODE\np\ta,b\t<none>\n"
        );
        assert!(parse_spec("NAME").is_err());
    }
}
