//! A Job's `podFailurePolicy` (upstream `pkg/controller/job/pod_failure_policy.go`):
//! the first rule matching a failed pod — by a container's non-zero exit code or by a
//! pod condition — decides whether the failure fails the Job at once (FailJob), is not
//! counted against `backoffLimit` (Ignore), or counts as usual (Count).

use k8s_openapi::api::batch::v1::PodFailurePolicy;
use k8s_openapi::api::core::v1::Pod;

/// The matching rule's action and, for FailJob, upstream's message.
pub fn matching_rule(policy: &PodFailurePolicy, pod: &Pod) -> Option<(String, String)> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    for (i, rule) in policy.rules.iter().enumerate() {
        if let Some(req) = &rule.on_exit_codes {
            let statuses = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten());
            for cs in statuses {
                let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                    continue;
                };
                if t.exit_code == 0 || req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    continue;
                }
                let listed = req.values.contains(&t.exit_code);
                let matches = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
                if matches {
                    return Some((
                        rule.action.clone(),
                        format!(
                            "Container {} for pod {ns}/{name} failed with exit code {} matching {} rule at index {i}",
                            cs.name, t.exit_code, rule.action
                        ),
                    ));
                }
            }
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let want = pattern.status.as_deref().unwrap_or("True");
            if status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == pattern.type_ && c.status == want)
            {
                return Some((
                    rule.action.clone(),
                    format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                        pattern.type_, rule.action
                    ),
                ));
            }
        }
    }
    None
}
