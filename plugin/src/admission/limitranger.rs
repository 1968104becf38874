//! LimitRanger (upstream `plugin/pkg/admission/limitranger`): a namespace's LimitRanges
//! default the requests and limits its containers leave out (noting what they set in the
//! `kubernetes.io/limit-ranger` annotation), then hold containers, pods and claims to
//! their min, max and max limit/request ratio.

use super::list;
use apimachinery::StatusError;
use apimachinery::resource::Quantity;
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::quota::{ResourceList, pod_resources};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct LimitRanger {
    pub limitranges: Arc<Registry>,
}

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

fn quantities(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::from_json(q)?)))
        .collect()
}

/// A Container item's defaults with upstream's derivations: default limit from max,
/// default request from the default limit, then from min.
fn container_defaults(item: &Value) -> (ResourceList, ResourceList) {
    let mut limits = quantities(&item["default"]);
    for (k, v) in quantities(&item["max"]) {
        limits.entry(k).or_insert(v);
    }
    let mut requests = quantities(&item["defaultRequest"]);
    for (k, v) in &limits {
        requests.entry(k.clone()).or_insert(*v);
    }
    for (k, v) in quantities(&item["min"]) {
        requests.entry(k).or_insert(v);
    }
    (requests, limits)
}

fn items<'a>(ranges: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    ranges
        .iter()
        .flat_map(|r| r["spec"]["limits"].as_array().into_iter().flatten())
        .filter(move |i| i["type"] == kind)
}

/// Checks one set of requests/limits against an item (`what` = Container, Pod, ...).
fn check(
    item: &Value,
    what: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    errs: &mut Vec<String>,
) {
    // One error per constraint, the first that fails (upstream `minConstraint`).
    for (r, min) in quantities(&item["min"]) {
        let err = match (requests.get(&r), limits.get(&r)) {
            (None, _) => format!("minimum {r} usage per {what} is {min}.  No request is specified"),
            (Some(q), _) if *q < min => {
                format!("minimum {r} usage per {what} is {min}, but request is {q}")
            }
            (_, Some(l)) if *l < min => {
                format!("minimum {r} usage per {what} is {min}, but limit is {l}")
            }
            _ => continue,
        };
        errs.push(err);
    }
    // Likewise `maxConstraint`: the limit first, then the request.
    for (r, max) in quantities(&item["max"]) {
        let err = match (limits.get(&r), requests.get(&r)) {
            (None, _) => format!("maximum {r} usage per {what} is {max}.  No limit is specified"),
            (Some(l), _) if *l > max => {
                format!("maximum {r} usage per {what} is {max}, but limit is {l}")
            }
            (_, Some(q)) if *q > max => {
                format!("maximum {r} usage per {what} is {max}, but request is {q}")
            }
            _ => continue,
        };
        errs.push(err);
    }
    for (r, ratio) in quantities(&item["maxLimitRequestRatio"]) {
        let (Some(l), Some(q)) = (limits.get(&r), requests.get(&r)) else {
            if limits.contains_key(&r) {
                errs.push(format!("{r} max limit to request ratio per {what} is {ratio}, but no request is specified or request is 0"));
            }
            continue;
        };
        if q.is_zero() {
            errs.push(format!("{r} max limit to request ratio per {what} is {ratio}, but no request is specified or request is 0"));
            continue;
        }
        let actual = l.milli_value() as f64 / q.milli_value() as f64;
        if actual > ratio.milli_value() as f64 / 1000.0 {
            errs.push(format!("{r} max limit to request ratio per {what} is {ratio}, but provided ratio is {actual:.6}"));
        }
    }
}

fn forbidden(a: &Attributes<'_>, errs: Vec<String>) -> StatusError {
    let msg = if errs.len() == 1 {
        errs.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", errs.join(", "))
    };
    StatusError::forbidden(&a.resource, a.name, &msg)
}

#[async_trait]
impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = obj else { return Ok(()) };
        if !a.is("", "pods") || !a.subresource.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        let ranges = list(&self.limitranges, Some(a.namespace)).await;
        let mut notes = Vec::new();
        for item in items(&ranges, "Container") {
            let (default_requests, default_limits) = container_defaults(item);
            for (key, kind) in [
                ("initContainers", "init container"),
                ("containers", "container"),
            ] {
                for c in pod
                    .get_mut("spec")
                    .and_then(|s| s.get_mut(key))
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    let set =
                        |field: &str, defaults: &ResourceList, c: &mut Value| -> Vec<String> {
                            let mut names = Vec::new();
                            for (r, q) in defaults {
                                if c["resources"][field][r].is_null() {
                                    if !c["resources"].is_object() {
                                        c["resources"] = json!({});
                                    }
                                    if !c["resources"][field].is_object() {
                                        c["resources"][field] = json!({});
                                    }
                                    c["resources"][field][r] = q.to_json();
                                    names.push(r.clone());
                                }
                            }
                            names
                        };
                    let limits = set("limits", &default_limits, c);
                    let requests = set("requests", &default_requests, c);
                    if !requests.is_empty() {
                        notes.push(format!("{} request for {kind} {name}", requests.join(", ")));
                    }
                    if !limits.is_empty() {
                        notes.push(format!("{} limit for {kind} {name}", limits.join(", ")));
                    }
                }
            }
        }
        if !notes.is_empty() {
            if !pod["metadata"]["annotations"].is_object() {
                pod["metadata"]["annotations"] = json!({});
            }
            pod["metadata"]["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        Ok(())
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(obj) = obj else { return Ok(()) };
        if !a.subresource.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        let pvc = a.is("", "persistentvolumeclaims");
        if !a.is("", "pods") && !pvc {
            return Ok(());
        }
        let ranges = list(&self.limitranges, Some(a.namespace)).await;
        let mut errs = Vec::new();
        if pvc {
            let requests = quantities(&obj["spec"]["resources"]["requests"]);
            let limits = quantities(&obj["spec"]["resources"]["limits"]);
            for item in items(&ranges, "PersistentVolumeClaim") {
                check(item, "PersistentVolumeClaim", &requests, &limits, &mut errs);
            }
        } else {
            for item in items(&ranges, "Container") {
                for key in ["initContainers", "containers"] {
                    for c in obj["spec"][key].as_array().into_iter().flatten() {
                        let requests = quantities(&c["resources"]["requests"]);
                        let limits = quantities(&c["resources"]["limits"]);
                        check(item, "Container", &requests, &limits, &mut errs);
                    }
                }
            }
            for item in items(&ranges, "Pod") {
                let requests = pod_resources(&obj["spec"], "requests");
                let limits = pod_resources(&obj["spec"], "limits");
                check(item, "Pod", &requests, &limits, &mut errs);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(forbidden(a, errs))
        }
    }
}
