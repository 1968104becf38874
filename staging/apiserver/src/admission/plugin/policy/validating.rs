//! The ValidatingAdmissionPolicy plugin (upstream `admission/plugin/policy/validating`):
//! every ValidatingAdmissionPolicyBinding whose policy matches the request (the policy's
//! `matchConstraints`, then the binding's `matchResources`) runs the policy's CEL
//! `matchConditions`, `variables` and `validations` once per parameter object. A failed
//! validation is reported per the binding's `validationActions` (Deny, Warn, Audit);
//! an evaluation or configuration error obeys the policy's `failurePolicy`.

use super::cel::Activation;
use crate::admission::plugin::matching::{is_exempt, rule_matches, selectors_match};
use crate::admission::plugin::webhook::admission_request;
use crate::admission::{Attributes, Plugin};
use crate::registry::generic::Registry;
use apimachinery::StatusError;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The registry serving a policy's `paramKind` (`apiVersion`, `kind`), if any.
pub type ParamSource = Arc<dyn Fn(&str, &str) -> Option<Arc<Registry>> + Send + Sync>;

pub struct ValidatingAdmissionPolicy {
    pub policies: Arc<Registry>,
    pub bindings: Arc<Registry>,
    pub namespaces: Arc<Registry>,
    pub params: ParamSource,
}

/// What one validation (or the policy as a whole) decided.
enum Decision {
    Deny {
        message: String,
        reason: String,
        /// The validation's position in the policy (None: the policy as a whole).
        index: Option<usize>,
    },
    /// An evaluation or configuration error, subject to the failure policy.
    Error(String),
    /// An `auditAnnotations` entry: its key and value.
    Annotate(String, String),
}

/// Upstream's audit annotation for validations whose binding says `Audit`.
const VALIDATION_FAILURE: &str = "validation.policy.admission.k8s.io/validation_failure";

/// Messages from `messageExpression` that are unusable fall back to `message`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Upstream's HTTP code for a validation's `reason`.
fn reason_code(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        "Invalid" => 422,
        _ => 400,
    }
}

/// From the watch cache as it stands (upstream reads informers): no storage round trip.
async fn list(reg: &Registry, ns: Option<&str>) -> Result<Vec<Value>, StatusError> {
    Ok(reg
        .list(ns, &crate::registry::options::ListOptions::cached())
        .await?
        .items
        .iter()
        .map(|o| o.value.clone())
        .collect())
}

impl ValidatingAdmissionPolicy {
    /// Whether a `matchConstraints` / `matchResources` block wants this request. An empty
    /// `resourceRules` (allowed in bindings) does not narrow the match.
    async fn matches(
        &self,
        m: &Value,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        ns_labels: &mut Option<BTreeMap<String, String>>,
    ) -> Result<bool, StatusError> {
        let rules = m["resourceRules"].as_array().cloned().unwrap_or_default();
        if !rules.is_empty() && !rules.iter().any(|r| rule_matches(r, a)) {
            return Ok(false);
        }
        if m["excludeResourceRules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| rule_matches(r, a))
        {
            return Ok(false);
        }
        selectors_match(
            m.get("namespaceSelector"),
            m.get("objectSelector"),
            a,
            obj,
            &self.namespaces,
            ns_labels,
        )
        .await
    }

    /// The parameter objects a binding selects: `[Null]` for a policy without params.
    async fn params(
        &self,
        policy: &Value,
        binding: &Value,
        a: &Attributes<'_>,
    ) -> Result<Vec<Value>, Decision> {
        let kind = &policy["spec"]["paramKind"];
        if kind.is_null() {
            return Ok(vec![Value::Null]);
        }
        let param_ref = &binding["spec"]["paramRef"];
        if param_ref.is_null() {
            return Err(Decision::Error(format!(
                "failed to configure binding: no paramRef in binding {:?} for policy {:?} with paramKind",
                str_of(&binding["metadata"], "name"),
                str_of(&policy["metadata"], "name")
            )));
        }
        let (api_version, kind_name) = (str_of(kind, "apiVersion"), str_of(kind, "kind"));
        let Some(reg) = (self.params)(api_version, kind_name) else {
            return Err(Decision::Error(format!(
                "failed to configure policy: failed to find resource referenced by paramKind: '{api_version}, Kind={kind_name}'"
            )));
        };
        let namespaced = reg.strategy.info().namespaced;
        let ns = match param_ref["namespace"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => Some(n.to_string()),
            None if namespaced => Some(a.namespace.to_string()).filter(|n| !n.is_empty()),
            None => None,
        };
        if namespaced && ns.is_none() {
            return Err(Decision::Error(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into(),
            ));
        }
        let found = match param_ref["name"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => reg
                .get(ns.as_deref(), name)
                .await
                .ok()
                .into_iter()
                .collect(),
            None => {
                let selector = apimachinery::labels::Selector::from_label_selector(Some(
                    &param_ref["selector"],
                ))
                .map_err(|e| Decision::Error(format!("failed to configure binding: {e}")))?;
                list(&reg, ns.as_deref())
                    .await
                    .map_err(|e| Decision::Error(e.message))?
                    .into_iter()
                    .filter(|p| selector.matches(&crate::admission::plugin::matching::labels(p)))
                    .collect::<Vec<_>>()
            }
        };
        if found.is_empty() {
            return match param_ref["parameterNotFoundAction"].as_str() {
                Some("Allow") => Ok(Vec::new()),
                _ => Err(Decision::Deny {
                    message:
                        "no params found for policy binding with `Deny` parameterNotFoundAction"
                            .into(),
                    reason: "Invalid".into(),
                    index: None,
                }),
            };
        }
        Ok(found)
    }

    /// Runs the policy's conditions and validations with one parameter object.
    fn evaluate(&self, policy: &Value, base: &Activation, param: &Value) -> Vec<Decision> {
        let spec = &policy["spec"];
        let mut act = base.clone();
        act.bind("params", param);
        for mc in spec["matchConditions"].as_array().into_iter().flatten() {
            match act.eval_bool(str_of(mc, "expression")) {
                Ok(true) => {}
                Ok(false) => return Vec::new(),
                Err(e) => {
                    return vec![Decision::Error(format!(
                        "failed to evaluate match condition {:?}: {e}",
                        str_of(mc, "name")
                    ))];
                }
            }
        }
        // Variables see the ones declared before them; one that fails is left unset, so
        // only expressions using it fail.
        let mut variables: HashMap<String, cel::Value> = HashMap::new();
        for v in spec["variables"].as_array().into_iter().flatten() {
            act.bind_value("variables", variables.clone().into());
            if let Ok(value) = act.eval(str_of(v, "expression")) {
                variables.insert(str_of(v, "name").to_string(), value);
            }
        }
        act.bind_value("variables", variables.into());
        let mut out = Vec::new();
        for (index, v) in spec["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let expression = str_of(v, "expression");
            match act.eval_bool(expression) {
                Ok(true) => {}
                Ok(false) => {
                    let from_expression = v["messageExpression"]
                        .as_str()
                        .and_then(|m| match act.eval(m) {
                            Ok(cel::Value::String(s)) => Some(s.trim().to_string()),
                            _ => None,
                        })
                        .filter(|m| {
                            !m.is_empty() && m.len() <= MAX_MESSAGE_BYTES && !m.contains('\n')
                        });
                    let message = from_expression
                        .or_else(|| {
                            Some(str_of(v, "message").trim().to_string()).filter(|m| !m.is_empty())
                        })
                        .unwrap_or_else(|| format!("failed expression: {}", expression.trim()));
                    out.push(Decision::Deny {
                        message,
                        reason: v["reason"].as_str().unwrap_or("Invalid").to_string(),
                        index: Some(index),
                    });
                }
                Err(e) => out.push(Decision::Error(e)),
            }
        }
        // Audit annotations: a string value is recorded, null leaves the key out.
        let policy_name = str_of(&policy["metadata"], "name");
        for aa in spec["auditAnnotations"].as_array().into_iter().flatten() {
            match act.eval(str_of(aa, "valueExpression")) {
                Ok(cel::Value::String(v)) => out.push(Decision::Annotate(
                    format!("{policy_name}/{}", str_of(aa, "key")),
                    v.to_string(),
                )),
                Ok(cel::Value::Null) => {}
                Ok(other) => out.push(Decision::Error(format!(
                    "valueExpression '{}' resulted in unsupported return type: {other:?}; must be string or null",
                    str_of(aa, "valueExpression")
                ))),
                Err(e) => out.push(Decision::Error(e)),
            }
        }
        out
    }
}

#[async_trait]
impl Plugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        if is_exempt(a) {
            return Ok(());
        }
        let mut bindings = list(&self.bindings, None).await?;
        if bindings.is_empty() {
            return Ok(());
        }
        let policies: HashMap<String, Value> = list(&self.policies, None)
            .await?
            .into_iter()
            .map(|p| (str_of(&p["metadata"], "name").to_string(), p))
            .collect();
        bindings.sort_by(|x, y| {
            (
                str_of(&x["spec"], "policyName"),
                str_of(&x["metadata"], "name"),
            )
                .cmp(&(
                    str_of(&y["spec"], "policyName"),
                    str_of(&y["metadata"], "name"),
                ))
        });
        let mut ns_labels = None;
        let mut namespace_object: Option<Value> = None;
        let mut base: Option<Activation> = None;
        let mut denied: Option<(String, String)> = None;
        let mut audit_failures: Vec<Value> = Vec::new();
        let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for binding in &bindings {
            let Some(policy) = policies.get(str_of(&binding["spec"], "policyName")) else {
                continue;
            };
            let constraints = &policy["spec"]["matchConstraints"];
            if constraints.is_null() || !self.matches(constraints, a, obj, &mut ns_labels).await? {
                continue;
            }
            let resources = &binding["spec"]["matchResources"];
            if !resources.is_null() && !self.matches(resources, a, obj, &mut ns_labels).await? {
                continue;
            }
            if base.is_none() {
                if !a.namespace.is_empty() && !a.is("", "namespaces") {
                    namespace_object = self.namespaces.get(None, a.namespace).await.ok();
                }
                let mut act = Activation::default();
                act.bind("object", obj.unwrap_or(&Value::Null));
                act.bind("oldObject", a.old.unwrap_or(&Value::Null));
                act.bind("request", &admission_request(a, ""));
                act.bind(
                    "namespaceObject",
                    namespace_object.as_ref().unwrap_or(&Value::Null),
                );
                base = Some(act);
            }
            let decisions = match self.params(policy, binding, a).await {
                Ok(params) => params
                    .iter()
                    .flat_map(|p| self.evaluate(policy, base.as_ref().unwrap(), p))
                    .collect(),
                Err(d) => vec![d],
            };
            let fail = policy["spec"]["failurePolicy"].as_str() != Some("Ignore");
            let (policy_name, binding_name) = (
                str_of(&policy["metadata"], "name"),
                str_of(&binding["metadata"], "name"),
            );
            let actions = &binding["spec"]["validationActions"];
            for d in decisions {
                let (message, reason, index) = match d {
                    Decision::Deny {
                        message,
                        reason,
                        index,
                    } => (message, reason, index),
                    Decision::Annotate(k, v) => {
                        let values = annotations.entry(k).or_default();
                        if !values.contains(&v) {
                            values.push(v);
                        }
                        continue;
                    }
                    Decision::Error(message) if fail => (message, "Invalid".to_string(), None),
                    Decision::Error(message) => {
                        tracing::debug!(policy = policy_name, error = %message, "policy error ignored");
                        continue;
                    }
                };
                for action in binding["spec"]["validationActions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    match action.as_str() {
                        Some("Deny") if denied.is_none() => {
                            denied = Some((
                                format!("ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {message}"),
                                reason.clone(),
                            ));
                        }
                        Some("Warn") => warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {message}"
                        )),
                        Some("Audit") => {
                            let mut failure = json!({"message": message, "policy": policy_name,
                                "binding": binding_name, "validationActions": actions});
                            if let Some(i) = index {
                                failure["expressionIndex"] = json!(i);
                            }
                            audit_failures.push(failure);
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(audit) = a.audit {
            for (k, vs) in annotations {
                audit.add(&k, &vs.join(", "));
            }
            if !audit_failures.is_empty() {
                audit.add(VALIDATION_FAILURE, &Value::from(audit_failures).to_string());
            }
        }
        let Some((message, reason)) = denied else {
            return Ok(());
        };
        let name = if a.name.is_empty() {
            obj.map(|o| str_of(&o["metadata"], "name"))
                .unwrap_or_default()
        } else {
            a.name
        };
        let mut err = StatusError::forbidden(&a.resource, name, &message);
        err.code = reason_code(&reason);
        err.reason = reason;
        if let Some(d) = err.details.as_mut() {
            d["causes"] = json!([{"message": message}]);
        }
        Err(err)
    }
}
