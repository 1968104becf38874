//! Discovery documents (upstream `endpoints/discovery`): `/api`, `/apis`, `/apis/<group>`
//! and the per-version resource lists kubectl reads to map kinds to URLs.

use super::handlers::ApiServer;
use crate::server::aggregation::GroupVersion;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a resource: all of them, or those of a computed one.
fn verbs(res: &super::handlers::ApiResource) -> Vec<&'static str> {
    match &res.virtual_rest {
        Some(v) => v.verbs().to_vec(),
        None => VERBS
            .into_iter()
            .filter(|v| *v != "deletecollection" || res.info().delete_collection)
            .collect(),
    }
}

fn subresource_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "binding" | "eviction" | "token" => vec!["create"],
        "finalize" => vec!["update"],
        "log" => vec!["get"],
        "exec" | "attach" | "portforward" => vec!["create", "get"],
        "proxy" => vec!["create", "delete", "get", "patch", "update"],
        _ => vec!["get", "patch", "update"],
    }
}

/// Subresource kinds that differ from the parent's.
fn subresource_kind(sub: &str, parent: &str) -> (String, String, String) {
    match sub {
        "scale" => ("autoscaling".into(), "v1".into(), "Scale".into()),
        "binding" => (String::new(), String::new(), "Binding".into()),
        "token" => (
            "authentication.k8s.io".into(),
            "v1".into(),
            "TokenRequest".into(),
        ),
        "eviction" => ("policy".into(), "v1".into(), "Eviction".into()),
        "exec" => (String::new(), String::new(), "PodExecOptions".into()),
        "attach" => (String::new(), String::new(), "PodAttachOptions".into()),
        "portforward" => (String::new(), String::new(), "PodPortForwardOptions".into()),
        "log" => (String::new(), String::new(), "Pod".into()),
        "proxy" if parent == "Node" => (String::new(), String::new(), "NodeProxyOptions".into()),
        "proxy" if parent == "Service" => {
            (String::new(), String::new(), "ServiceProxyOptions".into())
        }
        "proxy" => (String::new(), String::new(), "PodProxyOptions".into()),
        _ => (String::new(), String::new(), parent.into()),
    }
}

/// Groups and their versions in discovery order: groups by the highest
/// `groupPriorityMinimum` of their APIServices, then by name; versions by
/// `versionPriority`, then by Kubernetes version order (upstream's
/// `SortedByGroupAndVersion`). A group no APIService names yet keeps its place in the
/// built-in order, ahead of the rest (CRD groups rank as their APIServices would, 1000).
fn discovery_order(
    local: &BTreeMap<String, Vec<String>>,
    order: &[String],
    apiservices: &[GroupVersion],
) -> Vec<(String, Vec<String>)> {
    let mut groups: BTreeMap<String, Vec<String>> = local.clone();
    for gv in apiservices.iter().filter(|gv| gv.remote) {
        let vs = groups.entry(gv.group.clone()).or_default();
        if !vs.contains(&gv.version) {
            vs.push(gv.version.clone());
        }
    }
    let group_priority = |g: &str| {
        apiservices
            .iter()
            .filter(|gv| gv.group == g)
            .map(|gv| gv.group_priority)
            .max()
            .or_else(|| order.iter().position(|o| o == g).map(|i| 20_000 - i as i32))
            .unwrap_or(1000)
    };
    let version_priority = |g: &str, v: &str| {
        apiservices
            .iter()
            .find(|gv| gv.group == g && gv.version == v)
            .map_or(0, |gv| gv.version_priority)
    };
    let mut out: Vec<(String, Vec<String>)> = groups.into_iter().collect();
    for (g, vs) in &mut out {
        vs.sort_by_key(|v| {
            (
                std::cmp::Reverse(version_priority(g, v)),
                apimachinery::schema::kube_version_priority(v),
            )
        });
    }
    out.sort_by_key(|(g, _)| (std::cmp::Reverse(group_priority(g)), g.clone()));
    out
}

/// An aggregated server's `APIResourceList` entry as an aggregated discovery resource
/// (upstream converts the legacy document of servers that do not serve `apidiscovery`).
fn remote_resources(group: &str, version: &str, list: Option<&Value>) -> Vec<Value> {
    let entries: Vec<&Value> = list
        .and_then(|l| l["resources"].as_array())
        .into_iter()
        .flatten()
        .collect();
    let kind = |k: &Value| json!({"group": group, "version": version, "kind": k});
    let mut out: Vec<Value> = Vec::new();
    for r in entries
        .iter()
        .filter(|r| !r["name"].as_str().unwrap_or("/").contains('/'))
    {
        let name = r["name"].as_str().unwrap_or_default();
        let mut d = json!({
            "resource": name,
            "responseKind": kind(&r["kind"]),
            "scope": if r["namespaced"].as_bool().unwrap_or(false) { "Namespaced" } else { "Cluster" },
            "singularResource": r["singularName"],
            "verbs": r["verbs"],
        });
        for field in ["shortNames", "categories"] {
            if r[field].as_array().is_some_and(|a| !a.is_empty()) {
                d[field] = r[field].clone();
            }
        }
        let subs: Vec<Value> = entries
            .iter()
            .filter_map(|s| {
                let sub = s["name"].as_str()?.strip_prefix(&format!("{name}/"))?;
                let (sg, sv) = match s["group"].as_str() {
                    Some(g) => (g, s["version"].as_str().unwrap_or_default()),
                    None => (group, version),
                };
                Some(json!({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": s["kind"]}, "verbs": s["verbs"]}))
            })
            .collect();
        if !subs.is_empty() {
            d["subresources"] = json!(subs);
        }
        out.push(d);
    }
    out
}

impl ApiServer {
    /// Versions served per group (core group is "").
    fn versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (g, v, _) in self.resources().keys() {
            let vs = out.entry(g.clone()).or_default();
            if !vs.contains(v) {
                vs.push(v.clone());
            }
        }
        out
    }

    /// Named groups and their versions (this server's and aggregated ones) in discovery
    /// order.
    pub fn discovery_groups(&self, apiservices: &[GroupVersion]) -> Vec<(String, Vec<String>)> {
        discovery_order(&self.versions(), &self.group_order, apiservices)
            .into_iter()
            .filter(|(g, _)| !g.is_empty())
            .collect()
    }

    pub fn core_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        })
    }

    fn group_doc(name: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
            .collect();
        json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
    }

    pub fn group_list(&self, apiservices: &[GroupVersion]) -> Value {
        let groups: Vec<Value> = self
            .discovery_groups(apiservices)
            .iter()
            .map(|(g, vs)| Self::group_doc(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    pub fn group(&self, name: &str, apiservices: &[GroupVersion]) -> Option<Value> {
        let groups = self.discovery_groups(apiservices);
        let (_, versions) = groups.iter().find(|(g, _)| g == name)?;
        let mut doc = Self::group_doc(name, versions);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut entries: Vec<(&String, Value)> = Vec::new();
        let resources = self.resources();
        for ((g, v, r), res) in resources.iter() {
            if g != group || v != version {
                continue;
            }
            let ri = res.info();
            let mut doc = json!({
                "name": r,
                "singularName": ri.singular,
                "namespaced": ri.namespaced,
                "kind": ri.gvk.kind,
                "verbs": verbs(res),
            });
            if !ri.short_names.is_empty() {
                doc["shortNames"] = json!(ri.short_names);
            }
            if !ri.categories.is_empty() {
                doc["categories"] = json!(ri.categories);
            }
            entries.push((r, doc));
            for sub in &ri.subresources {
                let (sg, sv, sk) = subresource_kind(sub, &ri.gvk.kind);
                let mut d = json!({
                    "name": format!("{r}/{sub}"),
                    "singularName": "",
                    "namespaced": ri.namespaced,
                    "kind": sk,
                    "verbs": subresource_verbs(sub),
                });
                if !sg.is_empty() {
                    d["group"] = json!(sg);
                    d["version"] = json!(sv);
                }
                entries.push((r, d));
            }
        }
        if entries.is_empty() {
            return None;
        }
        entries.sort_by(|a, b| a.1["name"].as_str().cmp(&b.1["name"].as_str()));
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let resources: Vec<Value> = entries.into_iter().map(|(_, d)| d).collect();
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): every
    /// group with every version and its resources in one document; `core` selects `/api`
    /// (the legacy group) or `/apis` (all named groups).
    pub fn aggregated_discovery(&self, core: bool, apiservices: &[GroupVersion]) -> Value {
        let resources = self.resources();
        let groups = match core {
            true => self
                .versions()
                .remove("")
                .map(|vs| vec![(String::new(), vs)])
                .unwrap_or_default(),
            false => self.discovery_groups(apiservices),
        };
        let items: Vec<Value> = groups
            .iter()
            .map(|(g, versions)| {
                let vs: Vec<Value> = versions
                    .iter()
                    .filter_map(|v| {
                        let remote = apiservices
                            .iter()
                            .find(|gv| gv.remote && &gv.group == g && &gv.version == v);
                        let rs: Vec<Value> = match remote {
                            // An aggregated server that has not answered yet is left out
                            // until it does.
                            Some(gv) => {
                                gv.resources.as_ref()?;
                                remote_resources(g, v, gv.resources.as_ref())
                            }
                            None => {
                                let mut rs: Vec<(&String, Value)> = resources
                                    .iter()
                                    .filter(|((rg, rv, _), _)| rg == g && rv == v)
                                    .map(|((_, _, r), res)| (r, aggregated_resource(r, res)))
                                    .collect();
                                rs.sort_by(|a, b| a.0.cmp(b.0));
                                rs.into_iter().map(|(_, d)| d).collect()
                            }
                        };
                        Some(json!({"version": v, "resources": rs, "freshness": "Current"}))
                    })
                    .collect();
                // Since v1.33 a zero creationTimestamp is omitted, not `null`.
                let mut meta = json!({});
                if !g.is_empty() {
                    meta["name"] = json!(g);
                }
                json!({"metadata": meta, "versions": vs})
            })
            .collect();
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }
}

/// One resource of an aggregated discovery document.
fn aggregated_resource(plural: &str, res: &super::handlers::ApiResource) -> Value {
    let ri = res.info();
    let kind = |g: &str, v: &str, k: &str| json!({"group": g, "version": v, "kind": k});
    let mut d = json!({
        "resource": plural,
        "responseKind": kind(&ri.gvk.group, &ri.gvk.version, &ri.gvk.kind),
        "scope": if ri.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": ri.singular,
        "verbs": verbs(res),
    });
    if !ri.short_names.is_empty() {
        d["shortNames"] = json!(ri.short_names);
    }
    if !ri.categories.is_empty() {
        d["categories"] = json!(ri.categories);
    }
    let subs: Vec<Value> = ri
        .subresources
        .iter()
        .map(|sub| {
            let (sg, sv, sk) = subresource_kind(sub, &ri.gvk.kind);
            let (sg, sv) = if sk == ri.gvk.kind || sv.is_empty() {
                (ri.gvk.group.clone(), ri.gvk.version.clone())
            } else {
                (sg, sv)
            };
            json!({"subresource": sub, "responseKind": kind(&sg, &sv, &sk), "verbs": subresource_verbs(sub)})
        })
        .collect();
    if !subs.is_empty() {
        d["subresources"] = json!(subs);
    }
    d
}
