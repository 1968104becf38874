//! Audit policy (`audit.k8s.io/v1` Policy, upstream `apiserver/pkg/audit/policy`): the
//! first rule matching a request gives its level and the stages left out; no match
//! means level None.

use crate::authentication::UserInfo;
use crate::endpoints::request::RequestInfo;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    fn parse(s: &str) -> Result<Level, String> {
        match s {
            "None" => Ok(Level::None),
            "Metadata" => Ok(Level::Metadata),
            "Request" => Ok(Level::Request),
            "RequestResponse" => Ok(Level::RequestResponse),
            other => Err(format!(
                "rules[].level: Unsupported value: {other:?}: supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\""
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

const STAGES: [&str; 4] = [
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    /// (group, resources, resourceNames)
    resources: Vec<(String, Vec<String>, Vec<String>)>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
}

pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Vec<String>,
    pub omit_managed_fields: bool,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn stages(v: &Value) -> Result<Vec<String>, String> {
    let s = strings(v);
    for stage in &s {
        if !STAGES.contains(&stage.as_str()) {
            return Err(format!(
                "omitStages: Invalid value: {stage:?}: unknown stage"
            ));
        }
    }
    Ok(s)
}

/// The decision for one request.
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<String>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if doc["kind"] != "Policy" {
            return Err(format!(
                "unexpected kind {:?}, expected audit.k8s.io/v1 Policy",
                doc["kind"].as_str().unwrap_or_default()
            ));
        }
        let rules = doc["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                Ok(Rule {
                    level: Level::parse(r["level"].as_str().unwrap_or_default())?,
                    users: strings(&r["users"]),
                    user_groups: strings(&r["userGroups"]),
                    verbs: strings(&r["verbs"]),
                    resources: r["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|g| {
                            (
                                g["group"].as_str().unwrap_or_default().to_string(),
                                strings(&g["resources"]),
                                strings(&g["resourceNames"]),
                            )
                        })
                        .collect(),
                    namespaces: strings(&r["namespaces"]),
                    non_resource_urls: strings(&r["nonResourceURLs"]),
                    omit_stages: stages(&r["omitStages"])?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Policy {
            rules,
            omit_stages: stages(&doc["omitStages"])?,
            omit_managed_fields: doc["omitManagedFields"] == true,
        })
    }

    pub fn load(path: &std::path::Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read audit policy file {path:?}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("failed to load audit policy from {path:?}: {e}"))
    }

    pub fn decide(&self, user: &UserInfo, info: &RequestInfo) -> Decision {
        for r in &self.rules {
            if r.matches(user, info) {
                let mut omit = self.omit_stages.clone();
                omit.extend(r.omit_stages.iter().cloned());
                return Decision {
                    level: r.level,
                    omit_stages: omit,
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: Vec::new(),
        }
    }
}

impl Rule {
    fn matches(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.name) {
            return false;
        }
        if !self.user_groups.is_empty() && !user.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&info.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            if !info.is_resource_request {
                return false;
            }
            if !self.namespaces.is_empty() && !self.namespaces.contains(&info.namespace) {
                return false;
            }
            if !self.resources.is_empty()
                && !self.resources.iter().any(|g| resource_matches(g, info))
            {
                return false;
            }
        }
        if !self.non_resource_urls.is_empty() {
            if info.is_resource_request {
                return false;
            }
            return self
                .non_resource_urls
                .iter()
                .any(|u| match u.strip_suffix('*') {
                    Some(prefix) => info.path.starts_with(prefix),
                    None => *u == info.path,
                });
        }
        true
    }
}

fn resource_matches(
    (group, resources, names): &(String, Vec<String>, Vec<String>),
    info: &RequestInfo,
) -> bool {
    if *group != info.api_group {
        return false;
    }
    let combined = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    let resource_ok = resources.is_empty()
        || resources.iter().any(|r| {
            *r == combined
                || *r == "*"
                || (r.strip_prefix("*/").is_some_and(|s| s == info.subresource))
                || (r.strip_suffix("/*").is_some_and(|p| p == info.resource))
        });
    resource_ok && (names.is_empty() || names.contains(&info.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: None\n  users: [system:kube-proxy]\n- level: RequestResponse\n  resources: [{group: \"\", resources: [configmaps]}]\n- level: Metadata\n  resources: [{group: \"\", resources: [\"pods/*\"]}]\n- level: Request\n  nonResourceURLs: [/healthz*]\n",
        )
        .unwrap();
        let user = UserInfo {
            name: "alice".into(),
            ..Default::default()
        };
        let info = |m: &str, p: &str| RequestInfo::parse(m, p, &Default::default());
        assert_eq!(
            p.decide(&user, &info("GET", "/api/v1/namespaces/a/configmaps"))
                .level,
            Level::RequestResponse
        );
        assert_eq!(
            p.decide(&user, &info("GET", "/api/v1/namespaces/a/pods/x/log"))
                .level,
            Level::Metadata
        );
        assert_eq!(
            p.decide(&user, &info("GET", "/api/v1/nodes/n")).level,
            Level::None
        );
        assert_eq!(
            p.decide(&user, &info("GET", "/healthz/ping")).level,
            Level::Request
        );
        assert_eq!(
            p.decide(&user, &info("GET", "/api/v1/namespaces/a/configmaps"))
                .omit_stages,
            ["RequestReceived"]
        );
        assert!(Policy::parse("kind: Policy\nrules: [{level: Loud}]").is_err());
    }
}
