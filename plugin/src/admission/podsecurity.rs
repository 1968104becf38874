//! PodSecurity (upstream `plugin/pkg/admission/security/podsecurity`): a namespace's
//! `pod-security.kubernetes.io/<mode>` labels choose the Pod Security Standard enforced on
//! its pods (refused with 403), warned about (pods and workload templates) and audited.
//! Changing a namespace's enforce level warns about the pods already breaking it.

use super::{get, list};
use apimachinery::{Cause, GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use pod_security_admission::policy::{self, Level};
use pod_security_admission::{LevelVersion, NamespacePolicy, pod_template, policy_from_labels};
use serde_json::Value;
use std::sync::Arc;

pub struct PodSecurity {
    pub namespaces: Arc<Registry>,
    pub pods: Arc<Registry>,
}

/// Reasons only, as the namespace warnings list them per pod.
fn reasons(v: &[policy::Violation]) -> String {
    v.iter()
        .map(|v| v.reason.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether an update changes what the standards look at: anything in the spec other
/// than container images (upstream `isSignificantPodUpdate`).
fn significant_update(new: &Value, old: &Value) -> bool {
    fn without_images(pod: &Value) -> Value {
        let mut spec = pod["spec"].clone();
        for k in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(cs) = spec[k].as_array_mut() {
                for c in cs {
                    c["image"] = Value::Null;
                }
            }
        }
        spec
    }
    without_images(new) != without_images(old)
        || new["metadata"]["annotations"] != old["metadata"]["annotations"]
}

impl PodSecurity {
    async fn policy(&self, ns: &str) -> NamespacePolicy {
        let labels = get(&self.namespaces, None, ns)
            .await
            .map(|n| n["metadata"]["labels"].clone())
            .unwrap_or(Value::Null);
        policy_from_labels(&labels).0
    }

    /// Warnings about existing pods when a namespace's enforce level tightens.
    async fn namespace_warnings(
        &self,
        ns: &Value,
        old: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let (policy, errors) = policy_from_labels(&ns["metadata"]["labels"]);
        if !errors.is_empty() {
            let causes = errors
                .into_iter()
                .map(|(key, value, allowed)| {
                    Cause::invalid(
                        &format!("metadata.labels[{key}]"),
                        &Value::String(value),
                        allowed,
                    )
                })
                .collect();
            return Err(StatusError::invalid(
                "",
                "Namespace",
                ns["metadata"]["name"].as_str().unwrap_or_default(),
                causes,
            ));
        }
        let Some(old) = old else { return Ok(()) };
        let before = policy_from_labels(&old["metadata"]["labels"]).0;
        if before.enforce == policy.enforce || policy.enforce.level == Level::Privileged {
            return Ok(());
        }
        let name = ns["metadata"]["name"].as_str().unwrap_or_default();
        let mut offenders = Vec::new();
        for pod in list(&self.pods, Some(name)).await {
            let v = policy::evaluate_version(
                policy.enforce.level,
                &policy.enforce.version,
                &pod["metadata"],
                &pod["spec"],
            );
            if !v.is_empty() {
                let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
                offenders.push(format!("{pod_name}: {}", reasons(&v)));
            }
        }
        if !offenders.is_empty() {
            warnings.push(format!(
                "existing pods in namespace {name:?} violate the new PodSecurity enforce level {:?}",
                policy.enforce.to_string()
            ));
            warnings.extend(offenders);
        }
        Ok(())
    }
}

fn would_violate(level: &LevelVersion, v: &[policy::Violation]) -> String {
    format!(
        "would violate PodSecurity {:?}: {}",
        level.to_string(),
        policy::describe(v)
    )
}

#[async_trait]
impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(obj) = obj else { return Ok(()) };
        if a.operation == Operation::Delete || a.operation == Operation::Connect {
            return Ok(());
        }
        if a.is("", "namespaces") {
            if !a.subresource.is_empty() {
                return Ok(());
            }
            return self.namespace_warnings(obj, a.old, warnings).await;
        }
        if a.namespace.is_empty() {
            return Ok(());
        }
        if a.is("", "pods") {
            if !(a.subresource.is_empty() || a.subresource == "ephemeralcontainers") {
                return Ok(());
            }
            if let Some(old) = a.old
                && a.operation == Operation::Update
                && !significant_update(obj, old)
            {
                return Ok(());
            }
            let policy = self.policy(a.namespace).await;
            let enforced = policy::evaluate_version(
                policy.enforce.level,
                &policy.enforce.version,
                &obj["metadata"],
                &obj["spec"],
            );
            if !enforced.is_empty() {
                return Err(StatusError::forbidden(
                    &GroupResource::new("", "pods"),
                    a.name,
                    &format!(
                        "violates PodSecurity {:?}: {}",
                        policy.enforce.to_string(),
                        policy::describe(&enforced)
                    ),
                ));
            }
            let warned = policy::evaluate_version(
                policy.warn.level,
                &policy.warn.version,
                &obj["metadata"],
                &obj["spec"],
            );
            if !warned.is_empty() {
                warnings.push(would_violate(&policy.warn, &warned));
            }
            return Ok(());
        }
        // Workload resources: their pod templates are warned about, never refused.
        if !a.subresource.is_empty() {
            return Ok(());
        }
        let Some(template) = pod_template(a.kind, obj) else {
            return Ok(());
        };
        let policy = self.policy(a.namespace).await;
        let warned = policy::evaluate_version(
            policy.warn.level,
            &policy.warn.version,
            &template["metadata"],
            &template["spec"],
        );
        if !warned.is_empty() {
            warnings.push(would_violate(&policy.warn, &warned));
        }
        Ok(())
    }
}
