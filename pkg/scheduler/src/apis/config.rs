//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`) with upstream's
//! defaults: one `default-scheduler` profile, parallelism 16, adaptive
//! percentageOfNodesToScore, 1s..10s pod backoff, QPS 50 / burst 100, leader election on
//! the `kube-system/kube-scheduler` Lease (15s / 10s / 2s).

use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default = "parallelism")]
    pub parallelism: i32,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default = "one")]
    pub pod_initial_backoff_seconds: i64,
    #[serde(default = "ten")]
    pub pod_max_backoff_seconds: i64,
    #[serde(default)]
    pub client_connection: ClientConnection,
    #[serde(default)]
    pub leader_election: LeaderElection,
    #[serde(default)]
    pub profiles: Vec<Profile>,
    #[serde(default)]
    pub extenders: Vec<Value>,
}

fn parallelism() -> i32 {
    16
}
fn one() -> i64 {
    1
}
fn ten() -> i64 {
    10
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    #[serde(default)]
    pub kubeconfig: String,
    #[serde(default = "qps")]
    pub qps: f32,
    #[serde(default = "burst")]
    pub burst: u32,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub accept_content_types: String,
}

fn qps() -> f32 {
    50.0
}
fn burst() -> u32 {
    100
}

impl Default for ClientConnection {
    fn default() -> Self {
        ClientConnection {
            kubeconfig: String::new(),
            qps: qps(),
            burst: burst(),
            content_type: String::new(),
            accept_content_types: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElection {
    #[serde(default = "yes")]
    pub leader_elect: bool,
    #[serde(default = "lease_duration")]
    pub lease_duration: String,
    #[serde(default = "renew_deadline")]
    pub renew_deadline: String,
    #[serde(default = "retry_period")]
    pub retry_period: String,
    #[serde(default = "resource_lock")]
    pub resource_lock: String,
    #[serde(default = "resource_name")]
    pub resource_name: String,
    #[serde(default = "resource_namespace")]
    pub resource_namespace: String,
}

fn yes() -> bool {
    true
}
fn lease_duration() -> String {
    "15s".into()
}
fn renew_deadline() -> String {
    "10s".into()
}
fn retry_period() -> String {
    "2s".into()
}
fn resource_lock() -> String {
    "leases".into()
}
fn resource_name() -> String {
    "kube-scheduler".into()
}
fn resource_namespace() -> String {
    "kube-system".into()
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            leader_elect: true,
            lease_duration: lease_duration(),
            renew_deadline: renew_deadline(),
            retry_period: retry_period(),
            resource_lock: resource_lock(),
            resource_name: resource_name(),
            resource_namespace: resource_namespace(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub scheduler_name: String,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Plugins,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
    #[serde(default)]
    pub multi_point: PluginSet,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

/// A Go duration (`15s`, `1m30s`, `500ms`) as upstream's config files write them.
pub use apimachinery::duration::parse as parse_duration;

impl KubeSchedulerConfiguration {
    /// Reads `--config`, checking the kind and version as upstream does.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let cfg: KubeSchedulerConfiguration = serde_saphyr::from_str(&text)
            .map_err(|e| format!("decoding {}: {e}", path.display()))?;
        match (cfg.api_version.as_deref(), cfg.kind.as_deref()) {
            (Some("kubescheduler.config.k8s.io/v1"), Some("KubeSchedulerConfiguration")) => {}
            (v, k) => {
                return Err(format!(
                    "{}: no kind \"{}\" is registered for version \"{}\"",
                    path.display(),
                    k.unwrap_or_default(),
                    v.unwrap_or_default()
                ));
            }
        }
        cfg.validate()?;
        Ok(cfg.with_defaults())
    }

    pub fn with_defaults(mut self) -> Self {
        if self.profiles.is_empty() {
            self.profiles.push(Profile::default());
        }
        for p in &mut self.profiles {
            if p.scheduler_name.is_empty() {
                p.scheduler_name = DEFAULT_SCHEDULER_NAME.into();
            }
        }
        self
    }

    fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.parallelism <= 0 {
            errs.push(format!(
                "parallelism: Invalid value: {}: should be an integer value greater than zero",
                self.parallelism
            ));
        }
        if let Some(p) = self.percentage_of_nodes_to_score
            && !(0..=100).contains(&p)
        {
            errs.push(format!(
                "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
            ));
        }
        if self.pod_initial_backoff_seconds <= 0 {
            errs.push(format!(
                "podInitialBackoffSeconds: Invalid value: {}: must be greater than 0",
                self.pod_initial_backoff_seconds
            ));
        }
        if self.pod_max_backoff_seconds < self.pod_initial_backoff_seconds {
            errs.push(format!("podMaxBackoffSeconds: Invalid value: {}: must be greater than or equal to PodInitialBackoffSeconds", self.pod_max_backoff_seconds));
        }
        if !self.extenders.is_empty() {
            errs.push(
                "extenders: Forbidden: scheduler extenders are not supported by this scheduler yet"
                    .to_string(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let name = if p.scheduler_name.is_empty() {
                DEFAULT_SCHEDULER_NAME
            } else {
                &p.scheduler_name
            };
            if !names.insert(name.to_string()) {
                errs.push(format!(
                    "profiles[{i}].schedulerName: Duplicate value: {name:?}"
                ));
            }
        }
        for d in [
            &self.leader_election.lease_duration,
            &self.leader_election.renew_deadline,
            &self.leader_election.retry_period,
        ] {
            if let Err(e) = parse_duration(d) {
                errs.push(format!("leaderElection: {e}"));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "invalid KubeSchedulerConfiguration: [{}]",
                errs.join(", ")
            ))
        }
    }
}

impl Default for KubeSchedulerConfiguration {
    fn default() -> Self {
        KubeSchedulerConfiguration {
            api_version: Some("kubescheduler.config.k8s.io/v1".into()),
            kind: Some("KubeSchedulerConfiguration".into()),
            parallelism: parallelism(),
            percentage_of_nodes_to_score: None,
            pod_initial_backoff_seconds: 1,
            pod_max_backoff_seconds: 10,
            client_connection: ClientConnection::default(),
            leader_election: LeaderElection::default(),
            profiles: Vec::new(),
            extenders: Vec::new(),
        }
        .with_defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("15s").unwrap().as_secs(), 15);
        assert_eq!(parse_duration("1m30s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
