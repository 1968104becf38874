//! What the server serves, from aggregated discovery (`apidiscovery.k8s.io/v2`),
//! cached on disk in upstream's layout (`<cache>/discovery/<host_port>/servergroups.json`
//! and `<group>/<version>/serverresources.json`, six hours) so that our kubectl and
//! upstream's share one cache; and the REST mapper that turns `po`, `deploy.apps`,
//! `Deployment` or `deployments.v1.apps` into a resource. Upstream twins:
//! `client-go/discovery/cached/disk`, `cli-runtime/pkg/resource/...`,
//! `apimachinery/pkg/api/meta/restmapper.go`.

use crate::client::{Error, RestClient};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CACHE_TTL: Duration = Duration::from_secs(6 * 3600);
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

/// One served resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResource {
    pub group: String,
    pub version: String,
    /// The plural name (`deployments`).
    pub resource: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl ApiResource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployment.apps` / `pod`: how kubectl names the kind in output.
    pub fn kind_group(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// `deployments.apps` / `pods`.
    pub fn resource_group(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The collection path, in `namespace` when namespaced (`None` = all namespaces).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.resource),
            _ => format!("{prefix}/{}", self.resource),
        }
    }

    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!(
            "{}/{}",
            self.collection_path(namespace),
            percent_encode(name)
        )
    }
}

/// A served group and its versions, preferred first.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiGroup {
    pub name: String,
    pub versions: Vec<String>,
}

/// Everything discovery found, in the server's priority order.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub groups: Vec<ApiGroup>,
    pub resources: Vec<ApiResource>,
    /// Whether this came from the server just now (no point re-fetching on a miss).
    pub fresh: bool,
}

impl Discovery {
    /// The cached discovery, or the server's when the cache is missing or stale.
    pub async fn load(client: &RestClient, cache_dir: Option<&Path>) -> Result<Discovery, Error> {
        let dir = cache_dir.map(|d| d.join("discovery").join(safe_host(&client.host)));
        if let Some(dir) = &dir
            && let Some(d) = read_cache(dir)
        {
            return Ok(d);
        }
        Self::fetch(client, dir.as_deref()).await
    }

    /// Always from the server (the cache is rewritten).
    pub async fn fetch(client: &RestClient, cache: Option<&Path>) -> Result<Discovery, Error> {
        let core = client.get_json("/api", AGGREGATED).await?;
        let apis = client.get_json("/apis", AGGREGATED).await?;
        let mut d = Discovery {
            fresh: true,
            ..Default::default()
        };
        for list in [&core, &apis] {
            if list["kind"] != "APIGroupDiscoveryList" {
                return Err(Error::Transport(
                    "error: the server does not serve aggregated discovery (apidiscovery.k8s.io/v2)".into(),
                ));
            }
            for item in list["items"].as_array().into_iter().flatten() {
                d.add_group(item);
            }
        }
        if let Some(dir) = cache {
            // The cache is an optimisation: failing to write it is not an error.
            let _ = write_cache(dir, &d);
        }
        Ok(d)
    }

    fn add_group(&mut self, item: &Value) {
        let group = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut versions = Vec::new();
        for v in item["versions"].as_array().into_iter().flatten() {
            let version = v["version"].as_str().unwrap_or_default().to_string();
            for r in v["resources"].as_array().into_iter().flatten() {
                let strs = |k: &str| strings(&r[k]);
                self.resources.push(ApiResource {
                    group: group.clone(),
                    version: version.clone(),
                    resource: r["resource"].as_str().unwrap_or_default().to_string(),
                    singular: r["singularResource"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    kind: r["responseKind"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    namespaced: r["scope"] == "Namespaced",
                    verbs: strs("verbs"),
                    short_names: strs("shortNames"),
                    categories: strs("categories"),
                });
            }
            versions.push(version);
        }
        self.groups.push(ApiGroup {
            name: group,
            versions,
        });
    }

    /// `group/version` strings, as `kubectl api-versions` lists them (sorted).
    pub fn group_versions(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .groups
            .iter()
            .flat_map(|g| {
                g.versions.iter().map(move |v| {
                    if g.name.is_empty() {
                        v.clone()
                    } else {
                        format!("{}/{v}", g.name)
                    }
                })
            })
            .collect();
        out.sort();
        out
    }

    /// The preferred version of each resource (what `api-resources` lists).
    pub fn preferred(&self) -> Vec<&ApiResource> {
        self.resources
            .iter()
            .filter(|r| {
                self.groups
                    .iter()
                    .find(|g| g.name == r.group)
                    .and_then(|g| g.versions.first())
                    .is_some_and(|v| *v == r.version)
            })
            .collect()
    }

    /// The REST mapper: a resource argument (`po`, `pods`, `pod`, `Pod`, `deploy.apps`,
    /// `deployments.v1.apps`) to a resource, preferring the core group, then the
    /// server's group order, then each group's preferred version.
    pub fn resource_for(&self, arg: &str) -> Option<&ApiResource> {
        let arg = arg.to_lowercase();
        // resource.version.group, when it names a served version.
        let parts: Vec<&str> = arg.splitn(3, '.').collect();
        if parts.len() == 3
            && let Some(r) = self.find(parts[0], Some(parts[2]), Some(parts[1]))
        {
            return Some(r);
        }
        match arg.split_once('.') {
            Some((res, group)) => self
                .find(res, Some(group), None)
                .or_else(|| self.find(&arg, None, None)),
            None => self.find(&arg, None, None),
        }
    }

    /// Every served version of the resources a name can mean (upstream's
    /// `RESTMapper.ResourcesFor`), in priority order: exact plural, then singular or
    /// kind, then short name; groups in the server's order, preferred versions first.
    pub fn resources_for(&self, name: &str) -> Vec<&ApiResource> {
        let name = name.to_lowercase();
        let all: Vec<&ApiResource> = self
            .ordered()
            .into_iter()
            .filter(|r| !r.resource.contains('/'))
            .collect();
        let preds: [&dyn Fn(&ApiResource) -> bool; 3] = [
            &|r| r.resource == name,
            &|r| r.singular == name || r.kind.to_lowercase() == name,
            &|r| r.short_names.contains(&name),
        ];
        preds
            .iter()
            .map(|p| all.iter().copied().filter(|r| p(r)).collect::<Vec<_>>())
            .find(|v| !v.is_empty())
            .unwrap_or_default()
    }

    /// `RESTMapper.RESTMapping(GroupKind, version)`: a kind in a group, in `version` or
    /// else the group's preferred served version.
    pub fn resource_for_group_kind(
        &self,
        group: &str,
        kind: &str,
        version: Option<&str>,
    ) -> Option<&ApiResource> {
        self.ordered().into_iter().find(|r| {
            r.group == group
                && r.kind == kind
                && version.is_none_or(|v| r.version == v)
                && !r.resource.contains('/')
        })
    }

    /// A kind in an `apiVersion` (for objects read from files).
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources.iter().find(|r| {
            r.group == group && r.version == version && r.kind == kind && !r.resource.contains('/')
        })
    }

    fn find(&self, name: &str, group: Option<&str>, version: Option<&str>) -> Option<&ApiResource> {
        let matches = |r: &&ApiResource| {
            group.is_none_or(|g| r.group == g)
                && version.is_none_or(|v| r.version == v)
                && !r.resource.contains('/')
        };
        let by = |pred: &dyn Fn(&ApiResource) -> bool| -> Option<&ApiResource> {
            // Preferred versions first, in group order.
            self.ordered().into_iter().filter(matches).find(|r| pred(r))
        };
        by(&|r| r.resource == name)
            .or_else(|| by(&|r| r.singular == name || r.kind.to_lowercase() == name))
            .or_else(|| by(&|r| r.short_names.iter().any(|s| s == name)))
            .or_else(|| {
                // A group may be named by its first segment (`deploy.apps` ≠ `apps.example.com`).
                let group = group?;
                self.ordered().into_iter().find(|r| {
                    r.group.split('.').next() == Some(group)
                        && version.is_none_or(|v| r.version == v)
                        && (r.resource == name
                            || r.singular == name
                            || r.short_names.iter().any(|s| s == name))
                })
            })
    }

    fn ordered(&self) -> Vec<&ApiResource> {
        let mut out = Vec::with_capacity(self.resources.len());
        for g in &self.groups {
            for v in &g.versions {
                out.extend(
                    self.resources
                        .iter()
                        .filter(|r| r.group == g.name && &r.version == v),
                );
            }
        }
        out
    }

    /// Every preferred resource in one of `category` (`all`).
    pub fn in_category(&self, category: &str) -> Vec<&ApiResource> {
        self.preferred()
            .into_iter()
            .filter(|r| r.categories.iter().any(|c| c == category))
            .collect()
    }
}

// The strings of a JSON array (absent = none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// `https://127.0.0.1:6443` → `127.0.0.1_6443`, as upstream names the cache directory.
pub fn safe_host(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.' || c == '(' || c == ')'
            {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn fresh_file(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    let age = meta.modified().ok()?.elapsed().unwrap_or_default();
    if age > CACHE_TTL {
        return None;
    }
    std::fs::read(path).ok()
}

fn read_cache(dir: &Path) -> Option<Discovery> {
    let groups: Value =
        serde_json::from_slice(&fresh_file(&dir.join("servergroups.json"))?).ok()?;
    let mut d = Discovery::default();
    for g in groups["groups"].as_array()? {
        let name = g["name"].as_str()?.to_string();
        let preferred = g["preferredVersion"]["version"]
            .as_str()
            .unwrap_or_default();
        let mut versions: Vec<String> = g["versions"]
            .as_array()?
            .iter()
            .filter_map(|v| v["version"].as_str().map(str::to_string))
            .collect();
        if let Some(pos) = versions.iter().position(|v| v == preferred) {
            let p = versions.remove(pos);
            versions.insert(0, p);
        }
        for v in &versions {
            let path = if name.is_empty() {
                dir.join(v).join("serverresources.json")
            } else {
                dir.join(&name).join(v).join("serverresources.json")
            };
            let list: Value = serde_json::from_slice(&fresh_file(&path)?).ok()?;
            for r in list["resources"].as_array()? {
                let rname = r["name"].as_str().unwrap_or_default();
                if rname.contains('/') {
                    continue;
                }
                let strs = |k: &str| strings(&r[k]);
                d.resources.push(ApiResource {
                    group: name.clone(),
                    version: v.clone(),
                    resource: rname.to_string(),
                    singular: r["singularName"].as_str().unwrap_or_default().to_string(),
                    kind: r["kind"].as_str().unwrap_or_default().to_string(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                    verbs: strs("verbs"),
                    short_names: strs("shortNames"),
                    categories: strs("categories"),
                });
            }
        }
        d.groups.push(ApiGroup { name, versions });
    }
    Some(d)
}

fn write_cache(dir: &Path, d: &Discovery) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // servergroups.json lists the core group as "" first, as upstream's cache does.
    let groups: Vec<Value> = d
        .groups
        .iter()
        .map(|g| {
            let gv = |v: &String| {
                if g.name.is_empty() {
                    v.clone()
                } else {
                    format!("{}/{v}", g.name)
                }
            };
            json!({
                "name": g.name,
                "versions": g.versions.iter().map(|v| json!({"groupVersion": gv(v), "version": v})).collect::<Vec<_>>(),
                "preferredVersion": g.versions.first().map(|v| json!({"groupVersion": gv(v), "version": v})),
            })
        })
        .collect();
    write_atomic(
        &dir.join("servergroups.json"),
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )?;
    for g in &d.groups {
        for v in &g.versions {
            let gv = if g.name.is_empty() {
                v.clone()
            } else {
                format!("{}/{v}", g.name)
            };
            let resources: Vec<Value> = d
                .resources
                .iter()
                .filter(|r| r.group == g.name && &r.version == v)
                .map(|r| {
                    let mut o = json!({
                        "name": r.resource, "singularName": r.singular, "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": r.verbs,
                    });
                    if !r.short_names.is_empty() {
                        o["shortNames"] = json!(r.short_names);
                    }
                    if !r.categories.is_empty() {
                        o["categories"] = json!(r.categories);
                    }
                    o
                })
                .collect();
            let path: PathBuf = dir.join(&gv).join("serverresources.json");
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            write_atomic(
                &path,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            )?;
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, v: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(v)?)?;
    std::fs::rename(tmp, path)
}

/// Path-segment escaping for object names.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Query-value escaping (Go's `url.QueryEscape`).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Discovery {
        let mut d = Discovery::default();
        for (group, versions, res) in [
            (
                "",
                vec!["v1"],
                vec![
                    ("pods", "pod", "Pod", true, vec!["po"]),
                    ("events", "event", "Event", true, vec!["ev"]),
                ],
            ),
            (
                "apps",
                vec!["v1"],
                vec![(
                    "deployments",
                    "deployment",
                    "Deployment",
                    true,
                    vec!["deploy"],
                )],
            ),
            (
                "events.k8s.io",
                vec!["v1"],
                vec![("events", "event", "Event", true, vec!["ev"])],
            ),
            (
                "batch",
                vec!["v1"],
                vec![("jobs", "job", "Job", true, vec![])],
            ),
        ] {
            for v in &versions {
                for (r, s, k, ns, sn) in &res {
                    d.resources.push(ApiResource {
                        group: group.into(),
                        version: (*v).into(),
                        resource: (*r).into(),
                        singular: (*s).into(),
                        kind: (*k).into(),
                        namespaced: *ns,
                        verbs: vec![],
                        short_names: sn.iter().map(|x| x.to_string()).collect(),
                        categories: vec![],
                    });
                }
            }
            d.groups.push(ApiGroup {
                name: group.into(),
                versions: versions.iter().map(|v| v.to_string()).collect(),
            });
        }
        d
    }

    #[test]
    fn resource_arguments_resolve_as_upstreams_mapper() {
        let d = d();
        let g = |a: &str| d.resource_for(a).map(|r| r.resource_group());
        assert_eq!(g("po").as_deref(), Some("pods"));
        assert_eq!(g("Pod").as_deref(), Some("pods"));
        assert_eq!(g("deploy").as_deref(), Some("deployments.apps"));
        assert_eq!(g("deployments.apps").as_deref(), Some("deployments.apps"));
        assert_eq!(g("deployment.v1.apps").as_deref(), Some("deployments.apps"));
        assert_eq!(g("events").as_deref(), Some("events"));
        assert_eq!(
            g("events.events.k8s.io").as_deref(),
            Some("events.events.k8s.io")
        );
        assert_eq!(g("job.batch").as_deref(), Some("jobs.batch"));
        assert_eq!(g("nope"), None);
    }

    #[test]
    fn cache_round_trips_in_upstreams_layout() {
        let dir = std::env::temp_dir().join(format!("discovery-cache-{}", std::process::id()));
        let d = d();
        write_cache(&dir, &d).unwrap();
        assert!(dir.join("apps/v1/serverresources.json").exists());
        assert!(dir.join("v1/serverresources.json").exists());
        let back = read_cache(&dir).unwrap();
        assert_eq!(back.resources, d.resources);
        assert_eq!(back.groups, d.groups);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hosts_become_directory_names() {
        assert_eq!(safe_host("127.0.0.1:6443"), "127.0.0.1_6443");
    }
}
