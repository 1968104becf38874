//! Request classification (upstream `endpoints/request/requestinfo.go`): which API
//! resource a URL names, and the verb it means.

use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    pub path: String,
    /// get, list, watch, create, update, patch, delete, deletecollection (or the HTTP
    /// method lowercased for non-resource requests).
    pub verb: String,
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after the subresource (proxy paths).
    pub parts: Vec<String>,
    /// The authenticated caller (set once authentication succeeded).
    pub user: Option<crate::authentication::UserInfo>,
    /// The audit record's annotations, when the request is audited.
    pub audit_annotations: Option<crate::audit::Annotations>,
}

/// Subresources of `namespaces/<name>` that are not namespaced resources.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RequestInfo {
    pub fn parse(method: &str, path: &str, query: &HashMap<String, String>) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.to_lowercase(),
            ..Default::default()
        };
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let mut parts: &[String] = &segments;
        let Some(prefix) = parts.first() else {
            return info;
        };
        if prefix != "api" && prefix != "apis" {
            return info;
        }
        info.api_prefix = prefix.clone();
        parts = &parts[1..];
        if prefix == "apis" {
            let Some(g) = parts.first() else { return info };
            info.api_group = g.clone();
            parts = &parts[1..];
        }
        let Some(v) = parts.first() else { return info };
        info.api_version = v.clone();
        parts = &parts[1..];
        if parts.is_empty() {
            return info;
        }
        info.is_resource_request = true;
        let mut watch_path = false;
        if parts[0] == "watch" {
            watch_path = true;
            parts = &parts[1..];
        }
        if parts.is_empty() {
            info.is_resource_request = false;
            return info;
        }
        if parts[0] == "namespaces" && parts.len() > 1 {
            info.namespace = parts[1].clone();
            if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
                parts = &parts[2..];
            }
        }
        info.resource = parts[0].clone();
        if parts.len() >= 2 {
            info.name = parts[1].clone();
        }
        if parts.len() >= 3 {
            info.subresource = parts[2].clone();
        }
        if parts.len() > 3 {
            info.parts = parts[3..].to_vec();
        }
        // `namespaces/<name>` is the namespace itself, not a namespace scope.
        if info.resource == "namespaces" {
            info.namespace = String::new();
        }
        let watch_query = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        info.verb = match method {
            "GET" | "HEAD" if watch_path || watch_query => "watch".into(),
            "GET" | "HEAD" if info.name.is_empty() => "list".into(),
            "GET" | "HEAD" => "get".into(),
            "POST" => "create".into(),
            "PUT" => "update".into(),
            "PATCH" => "patch".into(),
            "DELETE" if info.name.is_empty() => "deletecollection".into(),
            "DELETE" => "delete".into(),
            other => other.to_lowercase(),
        };
        // A list or watch of exactly one name is authorized as a request for that name,
        // so `resourceNames` rules and the Node authorizer can allow it (upstream's
        // RequestInfoFactory does the same).
        if info.name.is_empty() && matches!(info.verb.as_str(), "list" | "watch") {
            let selector = query.get("fieldSelector").map(String::as_str);
            if let Some(name) = selector
                .and_then(|s| apimachinery::fields::FieldSelector::parse(s).ok())
                .and_then(|s| s.exact("metadata.name").map(String::from))
                .filter(|n| is_valid_path_segment_name(n))
            {
                info.name = name;
            }
        }
        info
    }
}

/// Upstream's `path.IsValidPathSegmentName`: a name that can stand in a URL path.
fn is_valid_path_segment_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str) -> RequestInfo {
        let (path, q) = path.split_once('?').unwrap_or((path, ""));
        RequestInfo::parse(method, path, &parse_query(Some(q)))
    }

    #[test]
    fn resource_paths() {
        let i = p("GET", "/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.verb.as_str()
            ),
            ("default", "pods", "web", "status", "get")
        );
        let i = p("GET", "/apis/apps/v1/deployments?watch=true");
        assert_eq!(
            (i.api_group.as_str(), i.resource.as_str(), i.verb.as_str()),
            ("apps", "deployments", "watch")
        );
        let i = p("GET", "/api/v1/watch/namespaces/kube-system/configmaps");
        assert_eq!(
            (i.namespace.as_str(), i.resource.as_str(), i.verb.as_str()),
            ("kube-system", "configmaps", "watch")
        );
        let i = p("PUT", "/api/v1/namespaces/foo/finalize");
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("", "namespaces", "foo", "finalize")
        );
        let i = p("GET", "/api/v1/namespaces/foo");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.verb.as_str()),
            ("namespaces", "foo", "get")
        );
        let i = p("DELETE", "/api/v1/namespaces/foo/secrets");
        assert_eq!(i.verb, "deletecollection");
        assert!(!p("GET", "/apis/apps/v1").is_resource_request);
        assert_eq!(percent_decode("a%3Db%2Cc+d"), "a=b,c d");
    }

    #[test]
    fn name_field_selector_names_the_request() {
        let i = p(
            "GET",
            "/api/v1/namespaces/kube-system/configmaps?watch=true&fieldSelector=metadata.name%3Dx",
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "x"));
        let i = p("GET", "/api/v1/configmaps?fieldSelector=metadata.name==y");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", "y"));
        for q in [
            "fieldSelector=metadata.name!%3Dx",
            "fieldSelector=metadata.namespace%3Dx",
            "fieldSelector=metadata.name%3Da%2Fb",
            "fieldSelector=metadata.name%3D..",
        ] {
            let i = p("GET", &format!("/api/v1/configmaps?{q}"));
            assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", ""), "{q}");
        }
    }
}
