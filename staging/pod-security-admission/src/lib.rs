//! Pod Security Admission (upstream `k8s.io/pod-security-admission`): the Pod Security
//! Standards' checks and how a namespace's labels pick the levels enforced, warned about
//! and audited.

pub mod policy;

use policy::Level;
use serde_json::Value;

pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// One mode's level and the version of the standards it names (`latest` or `v1.35`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The levels a namespace asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: LevelVersion,
    pub warn: LevelVersion,
    pub audit: LevelVersion,
}

/// An invalid label: (label key, value, what is allowed).
pub type LabelError = (String, String, &'static str);

fn valid_version(v: &str) -> bool {
    v == "latest"
        || v.strip_prefix("v1.")
            .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

/// Reads a namespace's labels. Unset modes are `privileged:latest`; an invalid value is
/// reported and, for enforcement, treated as `restricted:latest` (fail closed as upstream).
pub fn policy_from_labels(labels: &Value) -> (NamespacePolicy, Vec<LabelError>) {
    let mut errors = Vec::new();
    let mut mode = |m: &str| {
        let key = format!("{LABEL_PREFIX}{m}");
        let version_key = format!("{key}-version");
        let level = match labels[&key].as_str() {
            None => Level::Privileged,
            Some(v) => Level::parse(v).unwrap_or_else(|| {
                errors.push((
                    key.clone(),
                    v.to_string(),
                    "must be one of privileged, baseline, restricted",
                ));
                Level::Restricted
            }),
        };
        let version = match labels[&version_key].as_str() {
            None => "latest".to_string(),
            Some(v) if valid_version(v) => v.to_string(),
            Some(v) => {
                errors.push((
                    version_key.clone(),
                    v.to_string(),
                    "must be \"latest\" or \"v1.x\"",
                ));
                "latest".to_string()
            }
        };
        LevelVersion { level, version }
    };
    let policy = NamespacePolicy {
        enforce: mode("enforce"),
        warn: mode("warn"),
        audit: mode("audit"),
    };
    (policy, errors)
}

/// The pod template inside a workload object, by kind.
pub fn pod_template<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    match kind {
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => Some(&obj["spec"]["template"]),
        "CronJob" => Some(&obj["spec"]["jobTemplate"]["spec"]["template"]),
        "PodTemplate" => Some(&obj["template"]),
        _ => None,
    }
    .filter(|t| t.is_object())
}
