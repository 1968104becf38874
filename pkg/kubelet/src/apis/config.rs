//! `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`, upstream
//! `pkg/kubelet/apis/config`): the `--config` file with upstream's defaults. Unknown
//! fields are warned about and ignored, as upstream falls back from strict decoding.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletConfiguration {
    pub api_version: String,
    pub kind: String,
    pub static_pod_path: String,
    pub sync_frequency: String,
    pub file_check_frequency: String,
    pub address: String,
    pub port: u16,
    pub read_only_port: u16,
    pub tls_cert_file: String,
    pub tls_private_key_file: String,
    pub authentication: Authentication,
    pub authorization: Authorization,
    pub healthz_port: u16,
    pub healthz_bind_address: String,
    pub cluster_domain: String,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    pub node_status_update_frequency: String,
    pub node_status_report_frequency: String,
    /// How often volume usage is gathered for the Summary API and the
    /// `kubelet_volume_stats_*` metrics.
    pub volume_stats_agg_period: String,
    pub node_lease_duration_seconds: i32,
    pub image_minimum_gc_age: String,
    pub image_gc_high_threshold_percent: i32,
    pub image_gc_low_threshold_percent: i32,
    pub max_pods: i32,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    pub pod_pids_limit: i64,
    /// Pods go in the `kubepods` QoS hierarchy (only `true` is supported).
    #[serde(rename = "cgroupsPerQOS")]
    pub cgroups_per_qos: bool,
    /// `pods`: `kubepods` is limited to the node's allocatable; `none`: to its capacity.
    pub enforce_node_allocatable: Vec<String>,
    pub resolv_conf: String,
    pub cgroup_driver: String,
    pub cgroup_root: String,
    pub runtime_request_timeout: String,
    pub serialize_image_pulls: bool,
    /// Pulls at once when not serialized (unset: no limit).
    pub max_parallel_image_pulls: Option<i32>,
    pub eviction_hard: BTreeMap<String, String>,
    pub eviction_pressure_transition_period: String,
    pub container_runtime_endpoint: String,
    pub image_service_endpoint: String,
    pub pod_logs_dir: String,
    pub container_log_max_size: String,
    pub container_log_max_files: i32,
    /// How often container logs are checked for rotation.
    pub container_log_monitor_interval: String,
    pub register_node: bool,
    pub register_with_taints: Vec<k8s_openapi::api::core::v1::Taint>,
    pub fail_swap_on: bool,
    /// Enforce pods' ephemeral-storage limits and emptyDir size limits by eviction.
    pub local_storage_capacity_isolation: bool,
    /// Refuse to run on a cgroup v1 host (v1.35's default).
    #[serde(rename = "failCgroupV1")]
    pub fail_cgroup_v1: bool,
    pub system_reserved: BTreeMap<String, String>,
    pub kube_reserved: BTreeMap<String, String>,
    #[serde(rename = "kubeAPIQPS")]
    pub kube_api_qps: f32,
    #[serde(rename = "kubeAPIBurst")]
    pub kube_api_burst: u32,
    #[serde(rename = "providerID")]
    pub provider_id: String,
    pub shutdown_grace_period: String,
    /// The part of `shutdownGracePeriod` kept for critical pods.
    pub shutdown_grace_period_critical_pods: String,
    /// Per-priority shutdown grace periods (instead of the two above).
    pub shutdown_grace_period_by_pod_priority:
        Vec<crate::nodeshutdown::ShutdownGracePeriodByPodPriority>,
    pub enable_server: bool,
    /// Rotate the client certificate before it expires (`--rotate-certificates`).
    pub rotate_certificates: bool,
    /// Obtain the serving certificate from the cluster (kubelet-serving CSRs).
    #[serde(rename = "serverTLSBootstrap")]
    pub server_tls_bootstrap: bool,
    /// RuntimeDefault seccomp for pods and containers that ask for no profile.
    pub seccomp_default: bool,
    /// Unsafe sysctls (names or `prefix*`) pods may set besides the safe ones.
    pub allowed_unsafe_sysctls: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Authentication {
    pub x509: X509Authentication,
    pub webhook: WebhookAuthentication,
    pub anonymous: AnonymousAuthentication,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct X509Authentication {
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookAuthentication {
    pub enabled: bool,
    pub cache_ttl: String,
}

impl Default for WebhookAuthentication {
    fn default() -> Self {
        WebhookAuthentication {
            enabled: true,
            cache_ttl: "2m0s".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AnonymousAuthentication {
    pub enabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Authorization {
    pub mode: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            mode: "Webhook".into(),
        }
    }
}

impl Default for KubeletConfiguration {
    fn default() -> Self {
        KubeletConfiguration {
            api_version: "kubelet.config.k8s.io/v1beta1".into(),
            kind: "KubeletConfiguration".into(),
            static_pod_path: String::new(),
            sync_frequency: "1m0s".into(),
            file_check_frequency: "20s".into(),
            address: "0.0.0.0".into(),
            port: 10250,
            read_only_port: 0,
            tls_cert_file: String::new(),
            tls_private_key_file: String::new(),
            authentication: Authentication::default(),
            authorization: Authorization::default(),
            healthz_port: 10248,
            healthz_bind_address: "127.0.0.1".into(),
            cluster_domain: String::new(),
            cluster_dns: Vec::new(),
            node_status_update_frequency: "10s".into(),
            node_status_report_frequency: "5m0s".into(),
            volume_stats_agg_period: "1m0s".into(),
            node_lease_duration_seconds: 40,
            image_minimum_gc_age: "2m0s".into(),
            image_gc_high_threshold_percent: 85,
            image_gc_low_threshold_percent: 80,
            max_pods: 110,
            pod_cidr: String::new(),
            pod_pids_limit: -1,
            cgroups_per_qos: true,
            enforce_node_allocatable: vec!["pods".into()],
            resolv_conf: "/etc/resolv.conf".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_root: String::new(),
            runtime_request_timeout: "2m0s".into(),
            serialize_image_pulls: true,
            max_parallel_image_pulls: None,
            eviction_hard: [
                ("memory.available", "100Mi"),
                ("nodefs.available", "10%"),
                ("nodefs.inodesFree", "5%"),
                ("imagefs.available", "15%"),
                ("imagefs.inodesFree", "5%"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            eviction_pressure_transition_period: "5m0s".into(),
            container_runtime_endpoint: "unix:///run/containerd/containerd.sock".into(),
            image_service_endpoint: String::new(),
            pod_logs_dir: "/var/log/pods".into(),
            container_log_max_size: "10Mi".into(),
            container_log_max_files: 5,
            container_log_monitor_interval: "10s".into(),
            register_node: true,
            register_with_taints: Vec::new(),
            fail_swap_on: true,
            local_storage_capacity_isolation: true,
            fail_cgroup_v1: true,
            system_reserved: BTreeMap::new(),
            kube_reserved: BTreeMap::new(),
            kube_api_qps: 50.0,
            kube_api_burst: 100,
            provider_id: String::new(),
            shutdown_grace_period: "0s".into(),
            shutdown_grace_period_critical_pods: "0s".into(),
            shutdown_grace_period_by_pod_priority: Vec::new(),
            enable_server: true,
            rotate_certificates: false,
            server_tls_bootstrap: false,
            seccomp_default: false,
            allowed_unsafe_sysctls: Vec::new(),
        }
    }
}

impl KubeletConfiguration {
    /// Reads a `--config` file (YAML or JSON).
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read kubelet config file {:?}: {e}", path))?;
        let value: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
            format!("failed to load kubelet config file, path: {path:?}, error: {e}")
        })?;
        let kind = value["kind"].as_str().unwrap_or_default();
        let version = value["apiVersion"].as_str().unwrap_or_default();
        if kind != "KubeletConfiguration"
            || !matches!(
                version,
                "kubelet.config.k8s.io/v1beta1" | "kubelet.config.k8s.io/v1"
            )
        {
            return Err(format!(
                "failed to load kubelet config file, path: {path:?}, error: no kind \"{kind}\" is registered for version \"{version}\""
            ));
        }
        let mut ignored = Vec::new();
        let mut cfg: KubeletConfiguration =
            serde_ignored::deserialize(value.clone(), |p| ignored.push(p.to_string())).map_err(
                |e| format!("failed to load kubelet config file, path: {path:?}, error: {e}"),
            )?;
        let (refused, unknown) = super::unsupported::check(&value, &ignored);
        if !refused.is_empty() {
            return Err(format!(
                "failed to load kubelet config file, path: {path:?}, error: fields this kubelet does not implement are set: {}",
                refused.join(", ")
            ));
        }
        for f in unknown {
            tracing::warn!(path = %path.display(), field = f, "unknown field in kubelet config file; ignored");
        }
        cfg.default_zero_values();
        Ok(cfg)
    }

    /// Upstream's defaulting: a zero duration, port or string in the file means the
    /// default (upstream kubeadm writes `syncFrequency: 0s` and the like).
    pub fn default_zero_values(&mut self) {
        let d = KubeletConfiguration::default();
        let zero =
            |v: &str| v.is_empty() || apimachinery::duration::parse(v).is_ok_and(|x| x.is_zero());
        for (field, default) in [
            (&mut self.sync_frequency, d.sync_frequency),
            (&mut self.file_check_frequency, d.file_check_frequency),
            (
                &mut self.node_status_update_frequency,
                d.node_status_update_frequency,
            ),
            (
                &mut self.node_status_report_frequency,
                d.node_status_report_frequency,
            ),
            (&mut self.volume_stats_agg_period, d.volume_stats_agg_period),
            (&mut self.image_minimum_gc_age, d.image_minimum_gc_age),
            (&mut self.runtime_request_timeout, d.runtime_request_timeout),
            (
                &mut self.container_log_monitor_interval,
                d.container_log_monitor_interval,
            ),
            (
                &mut self.eviction_pressure_transition_period,
                d.eviction_pressure_transition_period,
            ),
            (
                &mut self.authentication.webhook.cache_ttl,
                d.authentication.webhook.cache_ttl,
            ),
        ] {
            if zero(field) {
                *field = default;
            }
        }
        for (field, default) in [
            (&mut self.address, d.address),
            (&mut self.healthz_bind_address, d.healthz_bind_address),
            (&mut self.cgroup_driver, d.cgroup_driver),
            (&mut self.container_log_max_size, d.container_log_max_size),
            (
                &mut self.container_runtime_endpoint,
                d.container_runtime_endpoint,
            ),
            (&mut self.pod_logs_dir, d.pod_logs_dir),
        ] {
            if field.is_empty() {
                *field = default;
            }
        }
        if self.port == 0 {
            self.port = d.port;
        }
        if self.max_pods == 0 {
            self.max_pods = d.max_pods;
        }
        if self.node_lease_duration_seconds == 0 {
            self.node_lease_duration_seconds = d.node_lease_duration_seconds;
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        for (name, v) in [
            ("syncFrequency", &self.sync_frequency),
            ("fileCheckFrequency", &self.file_check_frequency),
            (
                "nodeStatusUpdateFrequency",
                &self.node_status_update_frequency,
            ),
            (
                "nodeStatusReportFrequency",
                &self.node_status_report_frequency,
            ),
            ("volumeStatsAggPeriod", &self.volume_stats_agg_period),
            ("runtimeRequestTimeout", &self.runtime_request_timeout),
            (
                "containerLogMonitorInterval",
                &self.container_log_monitor_interval,
            ),
            ("imageMinimumGCAge", &self.image_minimum_gc_age),
        ] {
            if let Err(e) = apimachinery::duration::parse(v) {
                errs.push(format!("invalid configuration: {name} ({v:?}): {e}"));
            }
        }
        if self.max_pods < 0 {
            errs.push("invalid configuration: maxPods (--max-pods) must not be negative".into());
        }
        if !(0..=100).contains(&self.image_gc_high_threshold_percent) {
            errs.push(format!("invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) {} must be between 0 and 100, inclusive", self.image_gc_high_threshold_percent));
        }
        if !(0..=100).contains(&self.image_gc_low_threshold_percent) {
            errs.push(format!("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {} must be between 0 and 100, inclusive", self.image_gc_low_threshold_percent));
        }
        if self.image_gc_low_threshold_percent >= self.image_gc_high_threshold_percent {
            errs.push(format!("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {}", self.image_gc_low_threshold_percent, self.image_gc_high_threshold_percent));
        }
        if self.node_lease_duration_seconds <= 0 {
            errs.push(
                "invalid configuration: nodeLeaseDurationSeconds must be greater than 0".into(),
            );
        }
        // Carried for upstream's defaults; anything else is not implemented.
        if self.read_only_port != 0 {
            errs.push(format!("invalid configuration: readOnlyPort ({}) is not supported by this kubelet: it serves only the authenticated port", self.read_only_port));
        }
        for (name, v) in [
            ("shutdownGracePeriod", &self.shutdown_grace_period),
            (
                "shutdownGracePeriodCriticalPods",
                &self.shutdown_grace_period_critical_pods,
            ),
        ] {
            if let Err(e) = apimachinery::duration::parse(v) {
                errs.push(format!("invalid configuration: {name} ({v:?}): {e}"));
            }
        }
        let grace = Self::duration(&self.shutdown_grace_period);
        let critical = Self::duration(&self.shutdown_grace_period_critical_pods);
        if critical > grace {
            errs.push(format!("invalid configuration: shutdownGracePeriodCriticalPods {critical:?} must be <= shutdownGracePeriod {grace:?}"));
        }
        if !self.shutdown_grace_period_by_pod_priority.is_empty() && !grace.is_zero() {
            errs.push("invalid configuration: Cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".into());
        }
        for g in &self.shutdown_grace_period_by_pod_priority {
            if g.shutdown_grace_period_seconds < 0 {
                errs.push(format!("invalid configuration: shutdownGracePeriodByPodPriority.shutdownGracePeriodSeconds {} must be >= 0", g.shutdown_grace_period_seconds));
            }
        }
        errs.extend(crate::cm::validate(self));
        errs.extend(crate::eviction::validate(&self.eviction_hard));
        if !self.cgroups_per_qos {
            errs.push("invalid configuration: cgroupsPerQOS (--cgroups-per-qos) false is not supported by this kubelet: pods always run in the kubepods QoS hierarchy".into());
        }
        if !self.image_service_endpoint.is_empty()
            && self.image_service_endpoint != self.container_runtime_endpoint
        {
            errs.push(format!("invalid configuration: imageServiceEndpoint ({:?}) must be the containerRuntimeEndpoint: this kubelet uses one runtime for both", self.image_service_endpoint));
        }
        if self.serialize_image_pulls && self.max_parallel_image_pulls.is_some_and(|n| n > 1) {
            errs.push("invalid configuration: maxParallelImagePulls cannot be larger than 1 unless SerializeImagePulls (--serialize-image-pulls) is set to false".into());
        }
        if let Err(e) = crate::logs::max_bytes(&self.container_log_max_size) {
            errs.push(format!("invalid configuration: {e}"));
        }
        if apimachinery::duration::parse(&self.container_log_monitor_interval)
            .is_ok_and(|d| d < Duration::from_secs(3))
        {
            errs.push(format!("invalid configuration: containerLogMonitorInterval {:?} must be a positive time duration greater than or equal to 3s", self.container_log_monitor_interval));
        }
        if self.container_log_max_files < 2 {
            errs.push(format!(
                "invalid configuration: containerLogMaxFiles ({}) must be greater than 1",
                self.container_log_max_files
            ));
        }
        if let Err(e) = crate::sysctl::Allowlist::new(&self.allowed_unsafe_sysctls) {
            errs.push(format!("invalid configuration: {e}"));
        }
        if !matches!(self.cgroup_driver.as_str(), "cgroupfs" | "systemd") {
            errs.push(format!(
                "invalid configuration: cgroupDriver {:?} must be one of cgroupfs, systemd",
                self.cgroup_driver
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join(", "))
        }
    }

    pub fn duration(v: &str) -> Duration {
        apimachinery::duration::parse(v).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_file() {
        let d = KubeletConfiguration::default();
        assert_eq!(d.max_pods, 110);
        assert_eq!(d.eviction_hard["memory.available"], "100Mi");
        let dir = std::env::temp_dir().join(format!("kcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.yaml");
        std::fs::write(&p, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 20\nclusterDNS: [10.96.0.10]\nbogus: 1\n").unwrap();
        let c = KubeletConfiguration::load(&p).unwrap();
        assert_eq!(
            (c.max_pods, c.cluster_dns.clone()),
            (20, vec!["10.96.0.10".to_string()])
        );
        assert_eq!(c.node_status_update_frequency, "10s");
        c.validate().unwrap();
        std::fs::write(&p, "apiVersion: v1\nkind: Pod\n").unwrap();
        assert!(
            KubeletConfiguration::load(&p)
                .unwrap_err()
                .contains("no kind \"Pod\"")
        );
        // Upstream kubeadm's file: zero values mean the defaults; unimplemented fields
        // at their defaults pass.
        std::fs::write(&p, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nsyncFrequency: 0s\nnodeStatusUpdateFrequency: 0s\ncpuManagerReconcilePeriod: 0s\nshutdownGracePeriod: 0s\nlogging:\n  flushFrequency: 0\n  verbosity: 0\nmemorySwap: {}\nauthorization:\n  mode: Webhook\n  webhook:\n    cacheAuthorizedTTL: 0s\n").unwrap();
        let c = KubeletConfiguration::load(&p).unwrap();
        assert_eq!(
            (
                c.sync_frequency.as_str(),
                c.node_status_update_frequency.as_str()
            ),
            ("1m0s", "10s")
        );
        c.validate().unwrap();
        // Settings this kubelet would not honour are refused by name.
        std::fs::write(&p, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncpuManagerPolicy: static\n").unwrap();
        let e = KubeletConfiguration::load(&p).unwrap_err();
        assert!(e.contains("cpuManagerPolicy (\"static\")"), "{e}");
        let c = KubeletConfiguration {
            shutdown_grace_period: "30s".into(),
            shutdown_grace_period_critical_pods: "40s".into(),
            read_only_port: 10255,
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("shutdownGracePeriodCriticalPods 40s must be <= shutdownGracePeriod 30s")
                && e.contains("readOnlyPort"),
            "{e}"
        );
    }
}
