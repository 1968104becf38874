//! The resource builder: command arguments (`pods`, `pods,svc a b`, `pod/a`, `all`)
//! and `-f` files, directories, URLs or stdin into what a command visits. Upstream
//! twin: `cli-runtime/pkg/resource/builder.go`.

use crate::discovery::{ApiResource, Discovery};
use serde_json::Value;
use std::path::Path;

/// One resource type and the names asked for (none = the whole collection).
#[derive(Debug, Clone)]
pub struct Selection {
    pub resource: ApiResource,
    pub names: Vec<String>,
}

/// Arguments in either form: `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME ...`.
pub fn parse_args(d: &Discovery, args: &[String]) -> Result<Vec<Selection>, String> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    let slashed = args.iter().filter(|a| a.contains('/')).count();
    if slashed > 0 {
        if slashed != args.len() {
            return Err("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'".to_string());
        }
        let mut out: Vec<Selection> = Vec::new();
        for a in args {
            let (ty, name) = a.split_once('/').expect("counted above");
            if name.is_empty() {
                return Err(
                    "arguments in resource/name form must have a single resource and name"
                        .to_string(),
                );
            }
            let r = mapping(d, ty)?;
            match out.last_mut() {
                Some(last) if last.resource == r => last.names.push(name.to_string()),
                _ => out.push(Selection {
                    resource: r,
                    names: vec![name.to_string()],
                }),
            }
        }
        return Ok(out);
    }
    let names: Vec<String> = args[1..].to_vec();
    let mut out = Vec::new();
    for ty in args[0].split(',').filter(|t| !t.is_empty()) {
        if ty == "all" || d.resource_for(ty).is_none() && !d.in_category(ty).is_empty() {
            for r in d.in_category(ty) {
                out.push(Selection {
                    resource: r.clone(),
                    names: names.clone(),
                });
            }
            continue;
        }
        out.push(Selection {
            resource: mapping(d, ty)?,
            names: names.clone(),
        });
    }
    Ok(out)
}

pub fn mapping(d: &Discovery, ty: &str) -> Result<ApiResource, String> {
    d.resource_for(ty)
        .cloned()
        .ok_or_else(|| format!("the server doesn't have a resource type \"{ty}\""))
}

/// The objects `-f` or `-k` name (only one of them may be given).
pub async fn read_sources(
    filenames: &[String],
    recursive: bool,
    kustomize: Option<&str>,
) -> Result<Vec<FileObject>, String> {
    match kustomize {
        Some(_) if !filenames.is_empty() => Err("only one of -f or -k can be specified".into()),
        Some(dir) => crate::kustomize::build(dir),
        None => read_files(filenames, recursive).await,
    }
}

/// An object read from a file, with where it came from.
#[derive(Debug, Clone)]
pub struct FileObject {
    pub source: String,
    pub object: Value,
}

/// Reads every object in `-f` sources: files, directories (their `.json`, `.yaml`,
/// `.yml` files; subdirectories with `recursive`), `http(s)://` URLs and `-` for stdin.
/// `kind: List` documents contribute their items.
pub async fn read_files(sources: &[String], recursive: bool) -> Result<Vec<FileObject>, String> {
    let mut out = Vec::new();
    for s in sources {
        if s == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| format!("reading stdin: {e}"))?;
            out.extend(parse_documents(&text, "STDIN")?);
        } else if s.starts_with("http://") || s.starts_with("https://") {
            let text = read_url(s).await?;
            out.extend(parse_documents(&text, s)?);
        } else {
            let path = Path::new(s);
            if !path.exists() {
                return Err(format!("the path \"{s}\" does not exist"));
            }
            visit(path, recursive, true, &mut out)?;
        }
    }
    Ok(out)
}

/// How often a URL is tried, and how long apart (the builder's `defaultHttpGetAttempts`).
const URL_ATTEMPTS: u32 = 3;
const URL_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// upstream's `URLVisitor` (`readHttpWithRetries`): a GET, tried again after a transport
/// error or a 5xx; certificates are checked against the system's roots.
async fn read_url(url: &str) -> Result<String, String> {
    use http_body_util::BodyExt;
    let uri: http::Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("loading the system's certificate roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<hyper::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let mut err = String::new();
    for attempt in 0..URL_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(URL_RETRY_DELAY).await;
        }
        let resp = match client.get(uri.clone()).await {
            Ok(r) => r,
            Err(e) => {
                let cause = error_chain(&e);
                err = if cause.contains("Connection refused") {
                    format!(
                        "The connection to the server {} was refused - did you specify the right host or port?",
                        uri.authority().map(|a| a.as_str()).unwrap_or_default()
                    )
                } else {
                    format!("Get {url:?}: {cause}")
                };
                continue;
            }
        };
        let status = resp.status();
        if status == http::StatusCode::OK {
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("Get {url:?}: reading the body: {e}"))?
                .to_bytes();
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        // Go's `resp.Status`: the code and the server's own reason phrase.
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        err = format!(
            "unable to read URL {url:?}, server reported {} {reason}, status code={}",
            status.as_u16(),
            status.as_u16()
        );
        if !status.is_server_error() {
            break;
        }
    }
    Err(err)
}

/// An error and its causes, `: `-separated as Go wraps them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn visit(path: &Path, recursive: bool, top: bool, out: &mut Vec<FileObject>) -> Result<(), String> {
    if path.is_dir() {
        if !top && !recursive {
            return Ok(());
        }
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            let manifest = matches!(
                e.extension().and_then(|x| x.to_str()),
                Some("json" | "yaml" | "yml")
            );
            if e.is_dir() || manifest {
                visit(&e, recursive, false, out)?;
            }
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    out.extend(parse_documents(&text, &path.display().to_string())?);
    Ok(())
}

/// The documents of a YAML stream as JSON values.
pub fn parse_yaml_values(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple::<Value>(text)
        .map_err(|e| format!("error converting YAML to JSON: {e}"))
}

/// The objects in a YAML or JSON stream.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<FileObject>, String> {
    let docs: Vec<Value> = if text.trim_start().starts_with('{') {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            out.push(v.map_err(|e| format!("error parsing {source}: {e}"))?);
        }
        out
    } else {
        serde_saphyr::from_multiple::<Value>(text)
            .map_err(|e| format!("error parsing {source}: error converting YAML to JSON: {e}"))?
    };
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() || doc.as_object().is_some_and(|m| m.is_empty()) {
            continue;
        }
        if doc["kind"].as_str().is_some_and(|k| k.ends_with("List")) && doc["items"].is_array() {
            for item in doc["items"].as_array().into_iter().flatten() {
                out.push(FileObject {
                    source: source.to_string(),
                    object: item.clone(),
                });
            }
            continue;
        }
        if doc["kind"].as_str().unwrap_or_default().is_empty() {
            return Err("error validating data: [apiVersion not set, kind not set]; if you choose to ignore these errors, turn validation off with --validate=false".to_string());
        }
        out.push(FileObject {
            source: source.to_string(),
            object: doc,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_lists_expand() {
        let objs = parse_documents(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
            "x.yaml",
        )
        .unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|o| o.object["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        assert!(parse_documents("metadata: {name: a}\n", "x").is_err());
    }
}
