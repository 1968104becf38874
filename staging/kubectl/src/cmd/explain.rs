//! `kubectl explain`. Upstream twins: `kubectl/pkg/cmd/explain/explain.go` and
//! `kubectl/pkg/explain/explain.go` (`SplitAndParseResourceRequest*`); the rendering is
//! `crate::explain`, from the server's OpenAPI v3 document of the resource's group version.

use crate::error::{CmdError, CmdResult};
use crate::explain::{self, Gvr};
use crate::factory::Factory;
use crate::output;

#[derive(clap::Args, Debug)]
#[command(about = "Get documentation for a resource")]
pub struct ExplainArgs {
    /// TYPE[.FIELD...]
    pub args: Vec<String>,
    /// Print the fields of fields (Currently only 1 level deep)
    #[arg(long)]
    pub recursive: bool,
    /// Get different explanations for particular API version (API group/version)
    #[arg(long = "api-version")]
    pub api_version: Option<String>,
    /// Format in which to render the schema (plaintext, plaintext-openapiv2)
    #[arg(short = 'o', long, default_value = "plaintext")]
    pub output: String,
}

const SUGGEST: &str = "Use \"kubectl api-resources\" for a complete list of supported resources.";

pub async fn run(f: &mut Factory, a: ExplainArgs) -> CmdResult {
    if a.args.is_empty() {
        return Err(CmdError::msg(format!(
            "You must specify the type of resource to explain. {SUGGEST}"
        )));
    }
    if a.args.len() > 1 {
        return Err(CmdError::msg(
            "We accept only this format: explain RESOURCE",
        ));
    }
    let (mut gvr, fields) = split_request(f, &a.args[0], a.api_version.is_some()).await?;
    match a.output.as_str() {
        "plaintext" => {}
        "plaintext-openapiv2" => {
            return Err(CmdError::msg(
                "--output plaintext-openapiv2 (the OpenAPI v2 renderer) is not supported by this kubectl; use --output plaintext",
            ));
        }
        other => return Err(CmdError::msg(format!("unrecognized format: {other}"))),
    }
    if let Some(av) = &a.api_version {
        let (group, version) = parse_group_version(av)?;
        gvr.group = group;
        gvr.version = version;
    }
    let client = f.client().await?;
    let doc = cli_runtime::openapi::group_version(&client, &gvr.group, &gvr.version)
        .await?
        .ok_or_else(|| {
            CmdError::msg(format!("couldn't find resource for \"{}\"", gvr.display()))
        })?;
    let rendered = explain::render(&doc, &gvr, &fields, a.recursive);
    output::print(&rendered.out);
    match rendered.error {
        Some(e) => Err(CmdError::plain(e)),
        None => Ok(()),
    }
}

/// `schema.ParseGroupVersion`: `v1`, `apps/v1`; more than one slash is an error.
fn parse_group_version(s: &str) -> Result<(String, String), CmdError> {
    match s.split('/').collect::<Vec<_>>()[..] {
        [v] => Ok((String::new(), v.to_string())),
        [g, v] => Ok((g.to_string(), v.to_string())),
        _ => Err(CmdError::msg(format!(
            "unexpected GroupVersion string: {s}"
        ))),
    }
}

/// `pods.spec.containers` → the resource and the field path. Without `--api-version` a
/// `resource.group` prefix picks among the groups serving the name
/// (`SplitAndParseResourceRequestWithMatchingPrefix`); otherwise the mapper's choice.
async fn split_request(
    f: &mut Factory,
    arg: &str,
    exact: bool,
) -> Result<(Gvr, Vec<String>), CmdError> {
    let trimmed = arg.strip_suffix('.').unwrap_or(arg);
    let segments = field_nodes(trimmed, exact)?;
    let resource = segments[0].clone();
    let mut d = f.discovery().await?;
    if d.resources_for(&resource).is_empty() && !d.fresh {
        d = f.fresh_discovery().await?;
    }
    let not_found = || {
        CmdError::plain(format!(
            "the server doesn't have a resource type \"{resource}\""
        ))
    };
    let gvr = |r: &cli_runtime::discovery::ApiResource| Gvr {
        group: r.group.clone(),
        version: r.version.clone(),
        resource: r.resource.clone(),
    };
    if exact {
        let r = d.resource_for(&resource).ok_or_else(not_found)?;
        return Ok((gvr(r), segments[1..].to_vec()));
    }
    let candidates = d.resources_for(&resource);
    for r in &candidates {
        let group_resource = r.resource_group();
        if let Some(suffix) = arg.strip_prefix(group_resource.as_str()) {
            let fields = if suffix.is_empty() {
                Vec::new()
            } else {
                // Upstream parses `{.<suffix>}`: the suffix's leading dot is a
                // recursive-descent node it skips.
                let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
                let suffix = suffix.strip_prefix('.').ok_or_else(|| {
                    CmdError::msg("invalid jsonpath syntax, first node must be field node")
                })?;
                if suffix.is_empty() {
                    Vec::new()
                } else {
                    field_nodes(suffix, false)?
                }
            };
            return Ok((gvr(r), fields));
        }
    }
    let first = candidates.first().ok_or_else(not_found)?;
    Ok((gvr(first), segments[1..].to_vec()))
}

/// The field names of a dotted path (`{.a.b}` in kubectl's JSONPath): anything but
/// plain fields is refused as upstream does (in its words for the `--api-version` parser
/// and the prefix-matching one).
fn field_nodes(path: &str, exact: bool) -> Result<Vec<String>, CmdError> {
    if path.is_empty() {
        return Err(CmdError::msg(
            "invalid jsonpath syntax, first node must be field node",
        ));
    }
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(['[', ']', '*', '{', '}', '@', '$', ' ']))
    {
        return Err(CmdError::msg(if exact {
            "invalid jsonpath syntax, all nodes must be field nodes"
        } else {
            "invalid jsonpath syntax, first node must be field node"
        }));
    }
    Ok(parts)
}
