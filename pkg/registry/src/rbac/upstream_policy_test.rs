//! The bootstrap policy compared rule by rule with upstream v1.35's, kept as data in
//! `testdata/bootstrap-policy-v1.35.json` (upstream keeps its own as `testdata/*.yaml`
//! fixtures beside its policy for the same reason: any change must be deliberate).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const UPSTREAM: &str = include_str!("../../testdata/bootstrap-policy-v1.35.json");

/// A rule as a comparable value: every list sorted.
type Rule = BTreeMap<&'static str, BTreeSet<String>>;

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn split(s: &str) -> BTreeSet<String> {
    s.split(',').map(String::from).collect()
}

/// A rule of the data file: [groups, resources, verbs(, names)] or ["URL", urls, verbs].
fn data_rule(r: &Value) -> Rule {
    let part = |i: usize| r[i].as_str().unwrap_or_default();
    let mut out = Rule::new();
    if part(0) == "URL" {
        out.insert("nonResourceURLs", split(part(1)));
        out.insert("verbs", split(part(2)));
        return out;
    }
    out.insert("apiGroups", split(part(0)));
    out.insert("resources", split(part(1)));
    out.insert("verbs", split(part(2)));
    if r.get(3).is_some() {
        out.insert("resourceNames", split(part(3)));
    }
    out
}

fn our_rule(r: &Value) -> Rule {
    let mut out = Rule::new();
    for k in [
        "apiGroups",
        "resources",
        "verbs",
        "resourceNames",
        "nonResourceURLs",
    ] {
        let v = strings(&r[k]);
        if !v.is_empty() {
            out.insert(k, v);
        }
    }
    out
}

/// Rules compared as multisets: the same rules, each as often.
fn rules_of(rules: impl Iterator<Item = Rule>) -> Vec<Rule> {
    let mut v: Vec<Rule> = rules.collect();
    v.sort();
    v
}

fn subjects(list: &Value, data: bool) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            if data {
                let p = |i: usize| s[i].as_str().unwrap_or_default().to_string();
                format!("{}/{}/{}", p(0), p(2), p(1))
            } else {
                let p = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                format!("{}/{}/{}", p("kind"), p("namespace"), p("name"))
            }
        })
        .collect()
}

fn ours() -> Vec<(&'static str, Value)> {
    super::bootstrappolicy::objects()
        .into_iter()
        .chain(super::component_roles::objects())
        .chain(super::controller_roles::objects())
        .collect()
}

fn key(obj: &Value) -> String {
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!(
            "{ns}/{}",
            obj["metadata"]["name"].as_str().unwrap_or_default()
        ),
        None => obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Objects of `resource` we create that upstream's policy has not (the cluster-wide
/// `system:controller:*` roles and bindings of the controller-manager's own controllers
/// aside, which the data leaves out).
fn not_upstreams(
    ours: &[(&'static str, Value)],
    resource: &str,
    data: &serde_json::Map<String, Value>,
    problems: &mut Vec<String>,
) {
    for (r, o) in ours {
        let k = key(o);
        let controller = !k.contains('/') && k.starts_with("system:controller:");
        if *r == resource && !data.contains_key(&k) && !controller {
            problems.push(format!("{resource} {k}: not upstream's"));
        }
    }
}

#[test]
fn bootstrap_policy_equals_upstream_v1_35() {
    let upstream: Value = serde_json::from_str(UPSTREAM).expect("the policy data parses");
    let ours = ours();
    let mut problems = Vec::new();
    let find = |resource: &str, k: &str| {
        ours.iter()
            .find(|(r, o)| *r == resource && key(o) == k)
            .map(|(_, o)| o.clone())
    };
    // Roles, cluster-wide and per namespace.
    for (resource, section) in [("clusterroles", "clusterRoles"), ("roles", "roles")] {
        let data = upstream[section].as_object().unwrap();
        for (name, want) in data {
            let Some(got) = find(resource, name) else {
                problems.push(format!("{resource} {name}: missing"));
                continue;
            };
            let (want_rules, aggregate, labels) = match want {
                Value::Array(rules) => (rules.clone(), None, json!({})),
                obj => (
                    obj["rules"].as_array().cloned().unwrap_or_default(),
                    obj["aggregate"].as_str(),
                    obj["labels"].clone(),
                ),
            };
            if got["metadata"]["labels"]["kubernetes.io/bootstrapping"] != "rbac-defaults" {
                problems.push(format!("{resource} {name}: no bootstrapping label"));
            }
            for (k, v) in labels.as_object().into_iter().flatten() {
                if &got["metadata"]["labels"][k] != v {
                    problems.push(format!("{resource} {name}: label {k} is not {v}"));
                }
            }
            if let Some(a) = aggregate {
                let selector = &got["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
                    [format!("rbac.authorization.k8s.io/aggregate-to-{a}")];
                if selector != "true" {
                    problems.push(format!(
                        "{resource} {name}: not aggregated from aggregate-to-{a}"
                    ));
                }
                continue;
            }
            let want = rules_of(want_rules.iter().map(data_rule));
            let have = rules_of(got["rules"].as_array().into_iter().flatten().map(our_rule));
            for r in &want {
                if !have.contains(r) {
                    problems.push(format!("{resource} {name}: missing rule {r:?}"));
                }
            }
            for r in &have {
                if !want.contains(r) {
                    problems.push(format!("{resource} {name}: extra rule {r:?}"));
                }
            }
        }
        // Nothing beyond upstream's, but for the controllers' own roles.
        not_upstreams(&ours, resource, data, &mut problems);
    }
    // Bindings.
    for (resource, section) in [
        ("clusterrolebindings", "clusterRoleBindings"),
        ("rolebindings", "roleBindings"),
    ] {
        let data = upstream[section].as_object().unwrap();
        for (name, want) in data {
            let Some(got) = find(resource, name) else {
                problems.push(format!("{resource} {name}: missing"));
                continue;
            };
            let want = want.as_array().unwrap();
            let (kind, role, subs) = match want.len() {
                3 => (
                    want[0].as_str().unwrap(),
                    want[1].as_str().unwrap(),
                    &want[2],
                ),
                _ => ("ClusterRole", want[0].as_str().unwrap(), &want[1]),
            };
            if got["roleRef"]
                != json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role})
            {
                problems.push(format!("{resource} {name}: roleRef {}", got["roleRef"]));
            }
            if subjects(subs, true) != subjects(&got["subjects"], false) {
                problems.push(format!(
                    "{resource} {name}: subjects {:?}, upstream {:?}",
                    subjects(&got["subjects"], false),
                    subjects(subs, true)
                ));
            }
        }
        not_upstreams(&ours, resource, data, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
