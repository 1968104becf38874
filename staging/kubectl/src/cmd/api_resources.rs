//! `kubectl api-resources` and `kubectl api-versions`. Upstream twins:
//! `kubectl/pkg/cmd/apiresources/{apiresources,apiversions}.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::printers::tabwriter;

#[derive(clap::Args, Debug)]
pub struct ApiResourcesArgs {
    /// Output format. One of: (wide, name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// When using the default or custom-column output format, don't print headers (default print headers).
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// Limit to resources in the specified API group.
    #[arg(long = "api-group")]
    pub api_group: Option<String>,
    /// If false, non-namespaced resources will be returned, otherwise returning namespaced resources by default.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub namespaced: Option<bool>,
    /// Limit to resources that support the specified verbs.
    #[arg(long, value_delimiter = ',')]
    pub verbs: Vec<String>,
    /// If non-empty, sort list of resources using specified field. The field can be either 'name' or 'kind'.
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
    /// Use the cached list of resources if available.
    #[arg(long)]
    pub cached: bool,
    /// Limit to resources that belong to the specified categories.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
}

pub async fn run(f: &mut Factory, a: ApiResourcesArgs) -> CmdResult {
    let wide = match a.output.as_deref() {
        None | Some("") => false,
        Some("wide") => true,
        Some("name") => false,
        Some(o) => return Err(CmdError::msg(format!("--output {o} is not available"))),
    };
    let names_only = a.output.as_deref() == Some("name");
    if let Some(s) = &a.sort_by
        && s != "name"
        && s != "kind"
    {
        return Err(CmdError::msg("--sort-by accepts only name or kind"));
    }
    let d = if a.cached {
        f.discovery().await?
    } else {
        f.fresh_discovery().await?
    };
    let mut rs: Vec<_> = d
        .preferred()
        .into_iter()
        .filter(|r| !r.verbs.is_empty())
        .filter(|r| a.api_group.as_ref().is_none_or(|g| &r.group == g))
        .filter(|r| a.namespaced.is_none_or(|n| r.namespaced == n))
        .filter(|r| a.verbs.iter().all(|v| r.verbs.contains(v)))
        .filter(|r| a.categories.iter().all(|c| r.categories.contains(c)))
        .cloned()
        .collect();
    rs.sort_by(|x, y| {
        let k = |r: &cli_runtime::discovery::ApiResource| match a.sort_by.as_deref() {
            Some("name") => r.resource.clone(),
            Some("kind") => r.kind.clone(),
            _ => r.group.clone(),
        };
        k(x).cmp(&k(y)).then_with(|| x.resource.cmp(&y.resource))
    });
    let mut text = String::new();
    if !a.no_headers && !names_only {
        text.push_str("NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND");
        if wide {
            text.push_str("\tVERBS\tCATEGORIES");
        }
        text.push('\n');
    }
    for r in &rs {
        if names_only {
            text.push_str(&r.resource_group());
            text.push('\n');
            continue;
        }
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}",
            r.resource,
            r.short_names.join(","),
            r.api_version(),
            r.namespaced,
            r.kind
        ));
        if wide {
            text.push_str(&format!(
                "\t{}\t{}",
                r.verbs.join(","),
                r.categories.join(",")
            ));
        }
        text.push('\n');
    }
    output::print(&tabwriter::align(&text));
    Ok(())
}

pub async fn versions(f: &mut Factory) -> CmdResult {
    let d = f.fresh_discovery().await?;
    for gv in d.group_versions() {
        output::print(&format!("{gv}\n"));
    }
    Ok(())
}
