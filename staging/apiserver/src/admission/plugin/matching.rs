//! Which admission requests a webhook or policy wants (upstream
//! `admission/plugin/webhook/predicates` and `policy/matching`): rules by operation,
//! group, version, resource/subresource, scope and name, and the namespace and object
//! label selectors.

use crate::admission::Attributes;
use crate::registry::generic::Registry;
use apimachinery::StatusError;
use apimachinery::labels::Selector;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Configuration kinds no webhook or policy sees, so a broken one can always be removed.
const EXEMPT: [&str; 4] = [
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
];

pub(crate) fn is_exempt(a: &Attributes<'_>) -> bool {
    a.resource.group == "admissionregistration.k8s.io"
        && EXEMPT.contains(&a.resource.resource.as_str())
}

pub(crate) fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

pub(crate) fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// One rule of `rules[]` against the request (upstream `rules.Matcher`); policies' rules
/// may also list `resourceNames`.
pub(crate) fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    let any = |v: &Value, want: &str| strings(v).any(|s| s == "*" || s == want);
    if !any(&rule["operations"], a.operation.as_str())
        || !any(&rule["apiGroups"], &a.resource.group)
        || !any(&rule["apiVersions"], a.version)
    {
        return false;
    }
    let resource_ok = strings(&rule["resources"]).any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        let res_ok = res == "*" || res == a.resource.resource;
        let sub_ok = if a.subresource.is_empty() {
            sub.is_empty()
        } else {
            sub == "*" || sub == a.subresource
        };
        res_ok && sub_ok
    });
    let namespaced = !a.namespace.is_empty();
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !namespaced,
        "Namespaced" => namespaced,
        _ => true,
    };
    let names = strings(&rule["resourceNames"]).collect::<Vec<_>>();
    let name_ok = names.is_empty() || names.contains(&a.name);
    resource_ok && scope_ok && name_ok
}

/// `namespaceSelector` (a namespace's own labels, the request namespace's for namespaced
/// objects; other cluster-scoped objects always match) and `objectSelector` (the new or
/// old object's labels). `ns_labels` caches the request namespace's labels.
pub(crate) async fn selectors_match(
    namespace_selector: Option<&Value>,
    object_selector: Option<&Value>,
    a: &Attributes<'_>,
    obj: Option<&Value>,
    namespaces: &Registry,
    ns_labels: &mut Option<BTreeMap<String, String>>,
) -> Result<bool, StatusError> {
    let empty = json!({});
    let ns_sel = Selector::from_label_selector(Some(namespace_selector.unwrap_or(&empty)))
        .map_err(StatusError::bad_request)?;
    let ns_ok = if a.is("", "namespaces") {
        obj.or(a.old).is_some_and(|o| ns_sel.matches(&labels(o)))
    } else if a.namespace.is_empty() {
        true
    } else {
        if ns_labels.is_none() {
            let ns = namespaces.get(None, a.namespace).await.ok();
            *ns_labels = Some(ns.as_ref().map(labels).unwrap_or_default());
        }
        ns_sel.matches(ns_labels.as_ref().unwrap())
    };
    let obj_sel = Selector::from_label_selector(Some(object_selector.unwrap_or(&empty)))
        .map_err(StatusError::bad_request)?;
    let obj_ok = [obj, a.old]
        .into_iter()
        .flatten()
        .any(|o| obj_sel.matches(&labels(o)))
        || (obj.is_none() && a.old.is_none());
    Ok(ns_ok && obj_ok)
}
