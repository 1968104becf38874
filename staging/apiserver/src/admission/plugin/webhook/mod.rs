//! Admission webhooks (upstream `apiserver/pkg/admission/plugin/webhook`): which webhooks
//! of the Mutating/ValidatingWebhookConfigurations a request matches (rules, scope,
//! namespace and object selectors), the `AdmissionReview` v1 they are sent, and how
//! their answers and failures turn into upstream's errors.

pub mod mutating;
pub mod validating;

use crate::admission::plugin::matching::{is_exempt, rule_matches, selectors_match, strings};
use crate::admission::{Attributes, Operation};
use crate::registry::generic::Registry;
use crate::util::webhook::{Endpoint, post_json};
use apimachinery::StatusError;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What webhooks read beyond their configurations: namespace labels for
/// `namespaceSelector`, Services for `clientConfig.service`.
pub struct Source {
    pub configurations: Arc<Registry>,
    pub namespaces: Arc<Registry>,
    pub services: Arc<Registry>,
}

impl Source {
    /// The webhooks of every configuration, ordered by configuration name then position.
    /// Read from the watch cache as it stands (upstream reads an informer), so a request
    /// costs no storage round trip.
    async fn webhooks(&self) -> Vec<Value> {
        let mut configs: Vec<Value> = self
            .configurations
            .list(None, &crate::registry::options::ListOptions::cached())
            .await
            .map(|l| l.items.iter().map(|o| o.value.clone()).collect())
            .unwrap_or_default();
        configs.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        configs
            .iter()
            .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The webhooks that want this request.
    async fn matching(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<Vec<Value>, StatusError> {
        if is_exempt(a) {
            return Ok(Vec::new());
        }
        let mut ns_labels: Option<BTreeMap<String, String>> = None;
        let mut out = Vec::new();
        for w in self.webhooks().await {
            if !w["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| rule_matches(r, a))
            {
                continue;
            }
            let selected = selectors_match(
                w.get("namespaceSelector"),
                w.get("objectSelector"),
                a,
                obj,
                &self.namespaces,
                &mut ns_labels,
            )
            .await?;
            if selected && match_conditions(&w, a, obj)? {
                out.push(w);
            }
        }
        Ok(out)
    }

    /// Where a webhook is served: its URL, or its Service's cluster IP.
    async fn endpoint(&self, w: &Value) -> Result<Endpoint, String> {
        crate::util::webhook::resolve(&w["clientConfig"], &self.services).await
    }
}

/// A webhook's `matchConditions` (upstream's `matchconditions.Matcher`): any false
/// condition skips the webhook; otherwise an expression that fails skips it under
/// `failurePolicy: Ignore` and refuses the request under `Fail`.
fn match_conditions(
    w: &Value,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<bool, StatusError> {
    let conditions: Vec<&Value> = w["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if conditions.is_empty() {
        return Ok(true);
    }
    let mut act = crate::admission::plugin::policy::cel::Activation::default();
    act.bind("object", obj.unwrap_or(&Value::Null));
    act.bind("oldObject", a.old.unwrap_or(&Value::Null));
    act.bind("request", &admission_request(a, ""));
    let mut error = None;
    for mc in conditions {
        let expression = mc["expression"].as_str().unwrap_or_default();
        match act.eval_bool(expression) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                let name = mc["name"].as_str().unwrap_or_default();
                error.get_or_insert(format!("matchCondition {name:?}: {e}"));
            }
        }
    }
    let Some(e) = error else {
        return Ok(true);
    };
    if w["failurePolicy"].as_str() == Some("Ignore") {
        tracing::warn!(webhook = name(w), error = %e, "failed evaluating match conditions, failing open");
        return Ok(false);
    }
    Err(StatusError::forbidden(
        &a.resource,
        a.name,
        &format!(
            "failed calling webhook {:?}: failed evaluating match conditions: {e}",
            name(w)
        ),
    ))
}

/// The `request` of an `AdmissionReview` v1 (also CEL's `request`), without the objects.
pub(crate) fn admission_request(a: &Attributes<'_>, uid: &str) -> Value {
    let user = a.user.cloned().unwrap_or_default();
    let options_kind = match a.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
        Operation::Connect => "",
    };
    let gvk = json!({"group": a.resource.group, "version": a.version, "kind": a.kind});
    let gvr =
        json!({"group": a.resource.group, "version": a.version, "resource": a.resource.resource});
    let mut request = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": a.name,
        "operation": a.operation.as_str(),
        "userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups, "extra": user.extra},
        "dryRun": a.dry_run,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
    });
    if !a.subresource.is_empty() {
        request["subResource"] = json!(a.subresource);
        request["requestSubResource"] = json!(a.subresource);
    }
    if !a.namespace.is_empty() {
        request["namespace"] = json!(a.namespace);
    }
    request
}

/// The `AdmissionReview` v1 request for a webhook.
fn review(a: &Attributes<'_>, obj: Option<&Value>, uid: &str) -> Value {
    let mut request = admission_request(a, uid);
    request["object"] = obj.cloned().unwrap_or(Value::Null);
    request["oldObject"] = a.old.cloned().unwrap_or(Value::Null);
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// A webhook's verdict.
pub(crate) struct Answer {
    pub patch: Option<json_patch::Patch>,
    pub warnings: Vec<String>,
}

fn name(w: &Value) -> &str {
    w["name"].as_str().unwrap_or_default()
}

/// Calls one webhook. Failures to reach it or to understand it are subject to its
/// `failurePolicy` (Ok(None) when ignored); a denial is always an error.
pub(crate) async fn call(
    source: &Source,
    w: &Value,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<Option<Answer>, StatusError> {
    let webhook = name(w);
    if a.dry_run
        && !matches!(
            w["sideEffects"].as_str(),
            Some("None") | Some("NoneOnDryRun")
        )
    {
        return Err(StatusError::bad_request(format!(
            "admission webhook {webhook:?} does not support dry run"
        )));
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let timeout = Duration::from_secs(w["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30));
    let ca = base64::engine::general_purpose::STANDARD
        .decode(w["clientConfig"]["caBundle"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let result = async {
        let ep = source.endpoint(w).await?;
        let resp = post_json(&ep, &ca, &review(a, obj, &uid), timeout).await?;
        let r = &resp["response"];
        if r["uid"].as_str() != Some(uid.as_str()) {
            return Err(format!(
                "expected response.uid={uid:?}, got {:?}",
                r["uid"].as_str().unwrap_or_default()
            ));
        }
        Ok(resp)
    }
    .await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            if w["failurePolicy"].as_str() == Some("Ignore") {
                tracing::warn!(webhook, error = %e, "failed calling webhook, failing open");
                return Ok(None);
            }
            return Err(StatusError::new(
                500,
                "InternalError",
                format!(
                    "Internal error occurred: failed calling webhook {webhook:?}: failed to call webhook: {e}"
                ),
            ));
        }
    };
    let r = &resp["response"];
    let warnings: Vec<String> = strings(&r["warnings"]).map(String::from).collect();
    if r["allowed"] != true {
        let st = &r["status"];
        let message = match st["message"].as_str().filter(|m| !m.is_empty()) {
            Some(m) => format!("admission webhook {webhook:?} denied the request: {m}"),
            None => format!("admission webhook {webhook:?} denied the request without explanation"),
        };
        let code = st["code"].as_u64().filter(|c| *c >= 400).unwrap_or(403) as u16;
        return Err(StatusError::new(
            code,
            st["reason"].as_str().unwrap_or_default(),
            message,
        ));
    }
    let patch = match r["patch"].as_str() {
        None => None,
        Some(p) => {
            if r["patchType"].as_str() != Some("JSONPatch") {
                return Err(StatusError::new(
                    500,
                    "InternalError",
                    format!(
                        "Internal error occurred: webhook {webhook:?} returned a patch of unsupported type"
                    ),
                ));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| StatusError::new(500, "InternalError", format!("Internal error occurred: webhook {webhook:?} returned an invalid patch: {e}")))?;
            Some(serde_json::from_slice(&raw).map_err(|e| {
                StatusError::new(500, "InternalError", format!("Internal error occurred: webhook {webhook:?} returned an invalid patch: {e}"))
            })?)
        }
    };
    Ok(Some(Answer { patch, warnings }))
}
