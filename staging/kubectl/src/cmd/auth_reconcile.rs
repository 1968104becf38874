//! `kubectl auth reconcile`: creates or updates RBAC Roles, ClusterRoles and their
//! bindings so they grant at least what the files say (exactly, with
//! `--remove-extra-permissions` / `--remove-extra-subjects`). Upstream twins:
//! `kubectl/pkg/cmd/auth/reconcile.go` and `pkg/registry/rbac/reconciliation`
//! (`computeReconciledRole`, `computeReconciledRoleBinding`, `validation.Covers`).

use super::apply::{DryRun, dry_run_mode};
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::percent_encode;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    /// Filename, directory, or URL to files identifying the resource to reconcile.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// If true, removes extra permissions added to roles
    #[arg(long = "remove-extra-permissions")]
    pub remove_extra_permissions: bool,
    /// If true, removes extra subjects added to rolebindings
    #[arg(long = "remove-extra-subjects")]
    pub remove_extra_subjects: bool,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// What reconciling one object found and did.
#[derive(Default)]
struct Outcome {
    operation: &'static str,
    missing_rules: Vec<Value>,
    extra_rules: Vec<Value>,
    missing_subjects: Vec<Value>,
    extra_subjects: Vec<Value>,
}

pub async fn run(f: &mut Factory, a: ReconcileArgs) -> CmdResult {
    if a.filenames.is_empty() {
        return Err(CmdError::msg("must specify one of -f and -k"));
    }
    let dry = dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let objects = cli_runtime::resource::read_files(&a.filenames, a.recursive)
        .await
        .map_err(CmdError::msg)?;
    let mut first = true;
    for o in objects {
        let mut obj = o.object;
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let group = obj["apiVersion"].as_str().unwrap_or_default();
        if !group.starts_with("rbac.authorization.k8s.io/") {
            continue; // Upstream reconciles RBAC objects and skips the rest.
        }
        let (plural, namespaced, binding) = match kind.as_str() {
            "Role" => ("roles", true, false),
            "ClusterRole" => ("clusterroles", false, false),
            "RoleBinding" => ("rolebindings", true, true),
            "ClusterRoleBinding" => ("clusterrolebindings", false, true),
            _ => continue,
        };
        obj["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace)
            .to_string();
        if namespaced {
            obj["metadata"]["namespace"] = json!(ns);
            if dry == DryRun::None {
                ensure_namespace(&client, &ns).await?;
            }
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let collection = if namespaced {
            format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/{plural}",
                percent_encode(&ns)
            )
        } else {
            format!("/apis/rbac.authorization.k8s.io/v1/{plural}")
        };
        let path = format!("{collection}/{}", percent_encode(&name));
        let existing = match client.get_json(&path, client::JSON).await {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let (result, outcome) = if binding {
            reconcile_binding(existing.as_ref(), &obj, a.remove_extra_subjects)
        } else {
            reconcile_role(existing.as_ref(), &obj, a.remove_extra_permissions)
        };
        let q = if dry == DryRun::Server {
            "?dryRun=All"
        } else {
            ""
        };
        let written = match (outcome.operation, dry) {
            (_, DryRun::Client) | ("none", _) => result,
            ("create", _) => {
                client
                    .send_json(
                        http::Method::POST,
                        &format!("{collection}{q}"),
                        client::JSON,
                        &result,
                    )
                    .await?
            }
            ("recreate", _) => {
                client
                    .request(
                        http::Method::DELETE,
                        &format!("{path}{q}"),
                        client::JSON,
                        None,
                    )
                    .await?;
                let mut fresh = result;
                if let Some(m) = fresh["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                    m.remove("uid");
                }
                client
                    .send_json(
                        http::Method::POST,
                        &format!("{collection}{q}"),
                        client::JSON,
                        &fresh,
                    )
                    .await?
            }
            _ => {
                client
                    .send_json(
                        http::Method::PUT,
                        &format!("{path}{q}"),
                        client::JSON,
                        &result,
                    )
                    .await?
            }
        };
        match &format {
            Some(fmt) => {
                if matches!(fmt, OutputFormat::Yaml) && !first {
                    output::print("---\n");
                }
                let mut written = written;
                if matches!(fmt, OutputFormat::Yaml | OutputFormat::Json)
                    && let Some(m) = written["metadata"].as_object_mut()
                {
                    m.remove("managedFields");
                }
                util::print_object(&written, fmt, false)?;
            }
            None => output::print(&format!(
                "{}/{name} reconciled{}\n",
                kind_group(&kind),
                dry.suffix()
            )),
        }
        first = false;
        print_outcome(&outcome);
    }
    Ok(())
}

fn kind_group(kind: &str) -> String {
    format!("{}.rbac.authorization.k8s.io", kind.to_lowercase())
}

async fn ensure_namespace(client: &RestClient, ns: &str) -> CmdResult {
    let path = format!("/api/v1/namespaces/{}", percent_encode(ns));
    match client.get_json(&path, client::JSON).await {
        Err(e) if e.is_not_found() => {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match client
                .send_json(
                    http::Method::POST,
                    "/api/v1/namespaces",
                    client::JSON,
                    &body,
                )
                .await
            {
                Err(e) if !e.is_already_exists() => Err(e.into()),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The stderr report upstream's `printResults` writes after each object.
fn print_outcome(o: &Outcome) {
    if o.operation == "none" {
        return;
    }
    let mut text = format!("\treconciliation required {}\n", o.operation);
    for (title, list, fmt) in [
        (
            "missing subjects added",
            &o.missing_subjects,
            go_subject as fn(&Value) -> String,
        ),
        ("extra subjects removed", &o.extra_subjects, go_subject),
        ("missing rules added", &o.missing_rules, go_rule),
        ("extra rules removed", &o.extra_rules, go_rule),
    ] {
        if !list.is_empty() {
            text += &format!("\t{title}:\n");
            for item in list {
                text += &format!("\t\t{}\n", fmt(item));
            }
        }
    }
    output::flush();
    eprint!("{text}");
}

/// `%v` of a string slice: `[a b]` (an empty string prints nothing).
fn go_strings(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x.as_str().unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

fn go_rule(r: &Value) -> String {
    format!(
        "{{Verbs:{} APIGroups:{} Resources:{} ResourceNames:{} NonResourceURLs:{}}}",
        go_strings(&r["verbs"]),
        go_strings(&r["apiGroups"]),
        go_strings(&r["resources"]),
        go_strings(&r["resourceNames"]),
        go_strings(&r["nonResourceURLs"])
    )
}

fn go_subject(s: &Value) -> String {
    let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
    format!(
        "{{Kind:{} APIGroup:{} Name:{} Namespace:{}}}",
        f("kind"),
        f("apiGroup"),
        f("name"),
        f("namespace")
    )
}

/// Labels and annotations: the existing ones with the expected ones over them; whether
/// that changed anything.
fn merge_meta(result: &mut Value, expected: &Value) -> bool {
    let mut changed = false;
    for field in ["labels", "annotations"] {
        for (k, v) in expected["metadata"][field]
            .as_object()
            .into_iter()
            .flatten()
        {
            if result["metadata"][field][k] != *v {
                if !result["metadata"][field].is_object() {
                    result["metadata"][field] = json!({});
                }
                result["metadata"][field][k] = v.clone();
                changed = true;
            }
        }
    }
    changed
}

fn rules(v: &Value) -> Vec<Value> {
    v["rules"].as_array().cloned().unwrap_or_default()
}

/// A role's rules or a binding's subjects: the existing ones plus the missing ones, or
/// with `remove_extra` exactly the expected ones; whether that changed the list.
fn reconcile_list(
    list: &mut Value,
    have: &[Value],
    want: &[Value],
    missing: &[Value],
    extra: &[Value],
    remove_extra: bool,
) -> bool {
    if !remove_extra && !missing.is_empty() {
        *list = json!(have.iter().chain(missing).collect::<Vec<_>>());
        true
    } else if remove_extra && (!missing.is_empty() || !extra.is_empty()) {
        *list = json!(want);
        true
    } else {
        false
    }
}

/// upstream `computeReconciledRole`.
fn reconcile_role(
    existing: Option<&Value>,
    expected: &Value,
    remove_extra: bool,
) -> (Value, Outcome) {
    let Some(existing) = existing else {
        let outcome = Outcome {
            operation: "create",
            missing_rules: rules(expected),
            ..Default::default()
        };
        return (expected.clone(), outcome);
    };
    let mut result = existing.clone();
    let mut outcome = Outcome {
        operation: "none",
        ..Default::default()
    };
    if merge_meta(&mut result, expected) {
        outcome.operation = "update";
    }
    let (have, want) = (rules(existing), rules(expected));
    outcome.extra_rules = uncovered(&want, &have);
    outcome.missing_rules = uncovered(&have, &want);
    let (missing, extra) = (&outcome.missing_rules, &outcome.extra_rules);
    if reconcile_list(
        &mut result["rules"],
        &have,
        &want,
        missing,
        extra,
        remove_extra,
    ) {
        outcome.operation = "update";
    }
    if !remove_extra {
        outcome.extra_rules.clear();
    }
    // A ClusterRole's aggregation selectors: the union, or the expected ones.
    let selectors = |v: &Value| {
        v["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (have_sel, want_sel) = (selectors(existing), selectors(expected));
    let missing: Vec<Value> = want_sel
        .iter()
        .filter(|s| !have_sel.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() || (remove_extra && have_sel.iter().any(|s| !want_sel.contains(s))) {
        let merged = if remove_extra {
            want_sel
        } else {
            have_sel.into_iter().chain(missing).collect()
        };
        result["aggregationRule"] = json!({"clusterRoleSelectors": merged});
        outcome.operation = "update";
    }
    (result, outcome)
}

fn subjects(v: &Value) -> Vec<Value> {
    v["subjects"].as_array().cloned().unwrap_or_default()
}

fn same_subject(a: &Value, b: &Value) -> bool {
    ["kind", "apiGroup", "name", "namespace"]
        .iter()
        .all(|k| a[*k].as_str().unwrap_or_default() == b[*k].as_str().unwrap_or_default())
}

/// upstream `computeReconciledRoleBinding`.
fn reconcile_binding(
    existing: Option<&Value>,
    expected: &Value,
    remove_extra: bool,
) -> (Value, Outcome) {
    let Some(existing) = existing else {
        let outcome = Outcome {
            operation: "create",
            missing_subjects: subjects(expected),
            ..Default::default()
        };
        return (expected.clone(), outcome);
    };
    let mut result = existing.clone();
    let mut outcome = Outcome {
        operation: "none",
        ..Default::default()
    };
    let recreate = existing["roleRef"] != expected["roleRef"];
    if recreate {
        result["roleRef"] = expected["roleRef"].clone();
    }
    if merge_meta(&mut result, expected) {
        outcome.operation = "update";
    }
    let (have, want) = (subjects(existing), subjects(expected));
    outcome.missing_subjects = want
        .iter()
        .filter(|w| !have.iter().any(|h| same_subject(h, w)))
        .cloned()
        .collect();
    outcome.extra_subjects = have
        .iter()
        .filter(|h| !want.iter().any(|w| same_subject(h, w)))
        .cloned()
        .collect();
    let (missing, extra) = (&outcome.missing_subjects, &outcome.extra_subjects);
    if reconcile_list(
        &mut result["subjects"],
        &have,
        &want,
        missing,
        extra,
        remove_extra,
    ) {
        outcome.operation = "update";
    }
    if !remove_extra {
        outcome.extra_subjects.clear();
    }
    if recreate {
        outcome.operation = "recreate";
    }
    (result, outcome)
}

/// The single-verb, single-resource rules of `servant` that no rule of `owner` grants
/// (upstream `validation.Covers` with `BreakdownRule`).
fn uncovered(owner: &[Value], servant: &[Value]) -> Vec<Value> {
    servant
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !owner.iter().any(|o| rule_covers(o, atom)))
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// One rule per group, resource, verb and resource name (and per URL and verb).
fn breakdown(rule: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let names = strs(&rule["resourceNames"]);
    for group in strs(&rule["apiGroups"]) {
        for resource in strs(&rule["resources"]) {
            for verb in strs(&rule["verbs"]) {
                if names.is_empty() {
                    out.push(
                        json!({"apiGroups": [group], "resources": [resource], "verbs": [verb]}),
                    );
                }
                for n in &names {
                    out.push(json!({"apiGroups": [group], "resources": [resource], "verbs": [verb], "resourceNames": [n]}));
                }
            }
        }
    }
    for url in strs(&rule["nonResourceURLs"]) {
        for verb in strs(&rule["verbs"]) {
            out.push(json!({"nonResourceURLs": [url], "verbs": [verb]}));
        }
    }
    out
}

/// Whether `owner` grants the single-valued rule `atom`.
fn rule_covers(owner: &Value, atom: &Value) -> bool {
    let has = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
    let verbs = strs(&owner["verbs"]);
    let verb = strs(&atom["verbs"]).pop().unwrap_or_default();
    if !has(&verbs, &verb) {
        return false;
    }
    if let Some(url) = strs(&atom["nonResourceURLs"]).pop() {
        return strs(&owner["nonResourceURLs"]).iter().any(|o| {
            o == "*" || *o == url || (o.ends_with('*') && url.starts_with(o.trim_end_matches('*')))
        });
    }
    let group = strs(&atom["apiGroups"]).pop().unwrap_or_default();
    let resource = strs(&atom["resources"]).pop().unwrap_or_default();
    if !has(&strs(&owner["apiGroups"]), &group) {
        return false;
    }
    let resource_ok = strs(&owner["resources"]).iter().any(|o| {
        o == "*"
            || *o == resource
            // `*/scale` covers every resource's scale; `pods/*` every pod subresource.
            || (o.starts_with("*/") && resource.split_once('/').is_some_and(|(_, s)| s == &o[2..]))
            || (o.ends_with("/*") && resource.split_once('/').is_some_and(|(r, _)| r == &o[..o.len() - 2]))
    });
    if !resource_ok {
        return false;
    }
    let owner_names = strs(&owner["resourceNames"]);
    owner_names.is_empty()
        || strs(&atom["resourceNames"])
            .first()
            .is_some_and(|n| owner_names.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rules_are_the_uncovered_atoms() {
        let have = vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})];
        let want =
            vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]})];
        let missing = uncovered(&have, &want);
        assert_eq!(
            missing,
            vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})]
        );
        assert_eq!(
            go_rule(&missing[0]),
            "{Verbs:[list] APIGroups:[] Resources:[pods] ResourceNames:[] NonResourceURLs:[]}"
        );
        let star = vec![json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})];
        assert!(uncovered(&star, &want).is_empty());
        let named = vec![
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]}),
        ];
        assert_eq!(
            uncovered(&named, &have).len(),
            1,
            "a named grant does not cover all pods"
        );
        let urls = vec![json!({"nonResourceURLs": ["/logs/*"], "verbs": ["get"]})];
        assert!(
            uncovered(
                &urls,
                &[json!({"nonResourceURLs": ["/logs/x"], "verbs": ["get"]})]
            )
            .is_empty()
        );
    }

    #[test]
    fn roles_union_unless_extra_permissions_go() {
        let existing = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let expected = json!({"metadata": {"name": "r", "labels": {"a": "b"}}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]});
        let (r, o) = reconcile_role(Some(&existing), &expected, false);
        assert_eq!(o.operation, "update");
        assert_eq!(r["rules"].as_array().unwrap().len(), 2);
        assert_eq!(r["metadata"]["labels"]["a"], "b");
        let (r, o) = reconcile_role(Some(&existing), &expected, true);
        assert_eq!(r["rules"], expected["rules"]);
        assert_eq!(o.extra_rules.len(), 1);
        let (_, o) = reconcile_role(Some(&r), &expected, false);
        assert_eq!(o.operation, "none");
    }

    #[test]
    fn bindings_add_subjects_and_recreate_on_a_new_role() {
        let existing = json!({"roleRef": {"kind": "Role", "name": "a"}, "subjects": [{"kind": "User", "name": "bob"}]});
        let expected = json!({"roleRef": {"kind": "Role", "name": "a"}, "subjects": [{"kind": "User", "name": "alice"}]});
        let (r, o) = reconcile_binding(Some(&existing), &expected, false);
        assert_eq!(o.operation, "update");
        assert_eq!(r["subjects"].as_array().unwrap().len(), 2);
        let moved = json!({"roleRef": {"kind": "Role", "name": "b"}, "subjects": []});
        assert_eq!(
            reconcile_binding(Some(&existing), &moved, false)
                .1
                .operation,
            "recreate"
        );
    }
}
