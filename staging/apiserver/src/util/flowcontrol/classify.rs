//! FlowSchema matching (upstream `util/flowcontrol` rule matching): the first schema, by
//! matchingPrecedence then name, with a rule whose subjects include the caller and whose
//! resource or non-resource rules cover the request.

use crate::authentication::UserInfo;
use crate::endpoints::request::RequestInfo;
use serde_json::Value;

fn strs(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn has(list: &Value, item: &str) -> bool {
    strs(list).any(|s| s == "*" || s == item)
}

fn subject_matches(subject: &Value, user: &UserInfo) -> bool {
    match subject["kind"].as_str() {
        Some("User") => {
            let name = subject["user"]["name"].as_str().unwrap_or_default();
            name == "*" || name == user.name
        }
        Some("Group") => {
            let name = subject["group"]["name"].as_str().unwrap_or_default();
            name == "*" || user.groups.iter().any(|g| g == name)
        }
        Some("ServiceAccount") => {
            let ns = subject["serviceAccount"]["namespace"]
                .as_str()
                .unwrap_or_default();
            let name = subject["serviceAccount"]["name"]
                .as_str()
                .unwrap_or_default();
            match user
                .name
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
            {
                Some((user_ns, user_name)) => user_ns == ns && (name == "*" || name == user_name),
                None => false,
            }
        }
        _ => false,
    }
}

fn resource_rule_matches(rule: &Value, info: &RequestInfo) -> bool {
    let resource = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    has(&rule["verbs"], &info.verb)
        && has(&rule["apiGroups"], &info.api_group)
        && has(&rule["resources"], &resource)
        && if info.namespace.is_empty() {
            rule["clusterScope"].as_bool().unwrap_or(false)
        } else {
            has(&rule["namespaces"], &info.namespace)
        }
}

fn non_resource_rule_matches(rule: &Value, info: &RequestInfo) -> bool {
    has(&rule["verbs"], &info.verb)
        && strs(&rule["nonResourceURLs"]).any(|u| {
            u == "*"
                || u == info.path
                || u.strip_suffix('*')
                    .is_some_and(|p| info.path.starts_with(p))
        })
}

/// Whether one of the schema's rules covers this request by this caller.
pub fn matches(schema: &Value, user: &UserInfo, info: &RequestInfo) -> bool {
    schema["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| {
            rule["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| subject_matches(s, user))
                && if info.is_resource_request {
                    rule["resourceRules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| resource_rule_matches(r, info))
                } else {
                    rule["nonResourceRules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| non_resource_rule_matches(r, info))
                }
        })
}

/// The flow within a schema's priority level: the user, the namespace, or one flow.
pub fn distinguisher(schema: &Value, user: &UserInfo, info: &RequestInfo) -> String {
    match schema["spec"]["distinguisherMethod"]["type"].as_str() {
        Some("ByUser") => user.name.clone(),
        Some("ByNamespace") => info.namespace.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn subjects_and_rules() {
        let fs = json!({"spec": {"rules": [{
            "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}],
            "resourceRules": [{"verbs": ["get", "update"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]}]}]}});
        let info = RequestInfo::parse(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/a/leases/x",
            &Default::default(),
        );
        let sa = user("system:serviceaccount:kube-system:ctl", &[]);
        assert!(matches(&fs, &sa, &info));
        assert!(!matches(
            &fs,
            &user("system:serviceaccount:other:ctl", &[]),
            &info
        ));
        let list = RequestInfo::parse("GET", "/api/v1/pods", &Default::default());
        assert!(!matches(&fs, &sa, &list));

        let probes = json!({"spec": {"rules": [{
            "subjects": [{"kind": "Group", "group": {"name": "system:unauthenticated"}}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez/*"]}]}]}});
        let anon = user("system:anonymous", &["system:unauthenticated"]);
        for (path, ok) in [
            ("/healthz", true),
            ("/livez/ping", true),
            ("/metrics", false),
        ] {
            let info = RequestInfo::parse("GET", path, &Default::default());
            assert_eq!(matches(&probes, &anon, &info), ok, "{path}");
        }
    }
}
