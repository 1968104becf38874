//! Discovery documents (upstream `endpoints/discovery`): `/api`, `/apis`, `/apis/<group>`
//! and the per-version resource lists kubectl reads to map kinds to URLs.

use super::handlers::ApiServer;
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
        for vs in out.values_mut() {
            vs.sort_by_key(|v| apimachinery::schema::kube_version_priority(v));
        }
        out
    }

    /// Served groups: the built-in ones in upstream's order, then the rest (custom
    /// resources) by name.
    fn served_groups<'a>(
        order: &'a [String],
        versions: &'a BTreeMap<String, Vec<String>>,
    ) -> Vec<&'a String> {
        let extra = versions.keys().filter(|g| !order.contains(g));
        order
            .iter()
            .filter(|g| versions.contains_key(*g))
            .chain(extra)
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

    pub fn group_list(&self) -> Value {
        let versions = self.versions();
        let groups: Vec<Value> = Self::served_groups(&self.group_order, &versions)
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| Self::group_doc(g, &versions[g]))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    pub fn group(&self, name: &str) -> Option<Value> {
        let versions = self.versions();
        let mut doc = Self::group_doc(name, versions.get(name).filter(|_| !name.is_empty())?);
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
    pub fn aggregated_discovery(&self, core: bool) -> Value {
        let versions = self.versions();
        let resources = self.resources();
        let groups: Vec<&String> = Self::served_groups(&self.group_order, &versions)
            .into_iter()
            .filter(|g| g.is_empty() == core)
            .collect();
        let items: Vec<Value> = groups
            .into_iter()
            .map(|g| {
                let vs: Vec<Value> = versions[g]
                    .iter()
                    .map(|v| {
                        let mut rs: Vec<(&String, Value)> = resources
                            .iter()
                            .filter(|((rg, rv, _), _)| rg == g && rv == v)
                            .map(|((_, _, r), res)| (r, aggregated_resource(r, res)))
                            .collect();
                        rs.sort_by(|a, b| a.0.cmp(b.0));
                        json!({"version": v, "resources": rs.into_iter().map(|(_, d)| d).collect::<Vec<_>>(), "freshness": "Current"})
                    })
                    .collect();
                let mut meta = json!({"creationTimestamp": null});
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
