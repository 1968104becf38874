//! `kubectl create role|clusterrole`: rules from `--verb`, `--resource` (mapped through
//! discovery, one rule per API group), `--resource-name`, `--non-resource-url` and
//! `--aggregation-rule`. Upstream twins: `kubectl/pkg/cmd/create/create_role.go`,
//! `create_clusterrole.go`.

use super::create::GeneratorArgs;
use crate::error::CmdError;
use crate::factory::Factory;
use crate::output;
use serde_json::{Value, json};

const RESOURCE_VERBS: &[&str] = &[
    "*",
    "get",
    "delete",
    "list",
    "create",
    "update",
    "patch",
    "watch",
    "proxy",
    "deletecollection",
    "use",
    "bind",
    "escalate",
    "impersonate",
];

const NON_RESOURCE_VERBS: &[&str] = &[
    "*", "get", "post", "put", "delete", "patch", "head", "options",
];

pub async fn generate(f: &mut Factory, kind: &str, args: &[String]) -> Result<Value, CmdError> {
    let cluster = kind == "clusterrole";
    let g = GeneratorArgs::parse(args);
    if cluster {
        g.known(
            kind,
            &[
                "verb",
                "resource",
                "resource-name",
                "non-resource-url",
                "aggregation-rule",
            ],
        )?;
    } else {
        g.known(kind, &["verb", "resource", "resource-name"])?;
    }
    let name = super::create::name_arg(kind, &g.positional)?;
    let verbs = g.list("verb");
    let resources = g.list("resource");
    let resource_names = g.list("resource-name");
    let urls = g.list("non-resource-url");
    let aggregation = g.list("aggregation-rule");
    let kind_name = if cluster { "ClusterRole" } else { "Role" };
    let mut role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind_name, "metadata": {"name": name}});
    if !aggregation.is_empty() {
        if !verbs.is_empty() || !resources.is_empty() || !urls.is_empty() {
            return Err(CmdError::msg(
                "aggregation rule must be specified without nonResourceURLs, resources, verbs or resourceNames",
            ));
        }
        let mut labels = serde_json::Map::new();
        for kv in &aggregation {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                CmdError::msg(format!(
                    "invalid argument \"{}\" for \"--aggregation-rule\" flag: {kv} must be formatted as key=value",
                    g.all("aggregation-rule").join(",")
                ))
            })?;
            labels.insert(k.to_string(), json!(v));
        }
        role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": labels}]});
        role["rules"] = Value::Null;
        return Ok(role);
    }
    if verbs.is_empty() {
        return Err(CmdError::msg("at least one verb must be specified"));
    }
    if resources.is_empty() && urls.is_empty() {
        return Err(CmdError::msg(if cluster {
            "one of resource or nonResourceURL must be specified"
        } else {
            "at least one resource must be specified"
        }));
    }
    for v in &verbs {
        let standard = RESOURCE_VERBS.contains(&v.as_str())
            || (!urls.is_empty() && NON_RESOURCE_VERBS.contains(&v.as_str()));
        if !standard {
            output::eprint_line(&format!("Warning: '{v}' is not a standard resource verb"));
        }
    }
    // One rule per API group, groups in the order first named.
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for r in &resources {
        let (path, sub) = match r.split_once('/') {
            Some((p, s)) => (p, Some(s)),
            None => (r.as_str(), None),
        };
        let (group, resource) = if path == "*" {
            (String::new(), "*".to_string())
        } else {
            let d = f.discovery().await?;
            let found = d.resource_for(path).cloned().ok_or_else(|| {
                CmdError::plain(format!(
                    "the server doesn't have a resource type \"{}\"",
                    path.split('.').next().unwrap_or(path)
                ))
            })?;
            (found.group, found.resource)
        };
        let resource = match sub {
            Some(s) => format!("{resource}/{s}"),
            None => resource,
        };
        match rules.iter_mut().find(|(g, _)| *g == group) {
            Some((_, list)) => list.push(resource),
            None => rules.push((group, vec![resource])),
        }
    }
    let mut out: Vec<Value> = rules
        .into_iter()
        .map(|(group, list)| {
            let mut rule = json!({"apiGroups": [group], "resources": list, "verbs": verbs});
            if !resource_names.is_empty() {
                rule["resourceNames"] = json!(resource_names);
            }
            rule
        })
        .collect();
    if !urls.is_empty() {
        for u in &urls {
            if !u.starts_with('/') {
                return Err(CmdError::msg("nonResourceURL should start with /"));
            }
        }
        out.push(json!({"nonResourceURLs": urls, "verbs": verbs}));
    }
    role["rules"] = json!(out);
    Ok(role)
}
