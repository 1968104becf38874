//! `KubeProxyConfiguration` (`kubeproxy.config.k8s.io/v1alpha1`, upstream
//! `pkg/proxy/apis/config`) with upstream's defaults; unknown fields are warned about.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConfiguration {
    pub api_version: String,
    pub kind: String,
    pub bind_address: String,
    pub healthz_bind_address: String,
    pub metrics_bind_address: String,
    pub client_connection: ClientConnection,
    pub mode: String,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
    pub hostname_override: String,
    pub iptables: IptablesConfiguration,
    pub nftables: NftablesConfiguration,
    pub node_port_addresses: Vec<String>,
    pub config_sync_period: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnection {
    pub kubeconfig: String,
    pub qps: f32,
    pub burst: u32,
    pub content_type: String,
}

impl Default for ClientConnection {
    fn default() -> Self {
        ClientConnection {
            kubeconfig: String::new(),
            qps: 5.0,
            burst: 10,
            content_type: "application/vnd.kubernetes.protobuf".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IptablesConfiguration {
    pub masquerade_bit: i32,
    pub masquerade_all: bool,
    pub sync_period: String,
    pub min_sync_period: String,
    pub localhost_node_ports: bool,
}

impl Default for IptablesConfiguration {
    fn default() -> Self {
        IptablesConfiguration {
            masquerade_bit: 14,
            masquerade_all: false,
            sync_period: "30s".into(),
            min_sync_period: "1s".into(),
            localhost_node_ports: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NftablesConfiguration {
    pub masquerade_bit: i32,
    pub masquerade_all: bool,
    pub sync_period: String,
    pub min_sync_period: String,
}

impl Default for NftablesConfiguration {
    fn default() -> Self {
        NftablesConfiguration {
            masquerade_bit: 14,
            masquerade_all: false,
            sync_period: "30s".into(),
            min_sync_period: "1s".into(),
        }
    }
}

impl Default for KubeProxyConfiguration {
    fn default() -> Self {
        KubeProxyConfiguration {
            api_version: "kubeproxy.config.k8s.io/v1alpha1".into(),
            kind: "KubeProxyConfiguration".into(),
            bind_address: "0.0.0.0".into(),
            healthz_bind_address: "0.0.0.0:10256".into(),
            metrics_bind_address: "127.0.0.1:10249".into(),
            client_connection: ClientConnection::default(),
            mode: String::new(),
            cluster_cidr: String::new(),
            hostname_override: String::new(),
            iptables: IptablesConfiguration::default(),
            nftables: NftablesConfiguration::default(),
            node_port_addresses: Vec::new(),
            config_sync_period: "15m0s".into(),
        }
    }
}

impl KubeProxyConfiguration {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read config file {path:?}: {e}"))?;
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .map_err(|e| format!("failed to decode config file {path:?}: {e}"))?;
        let (kind, version) = (
            value["kind"].as_str().unwrap_or_default(),
            value["apiVersion"].as_str().unwrap_or_default(),
        );
        if kind != "KubeProxyConfiguration" || version != "kubeproxy.config.k8s.io/v1alpha1" {
            return Err(format!(
                "failed to decode config file {path:?}: no kind \"{kind}\" is registered for version \"{version}\""
            ));
        }
        let mut unknown = Vec::new();
        let cfg: Self = serde_ignored::deserialize(value, |p| unknown.push(p.to_string()))
            .map_err(|e| format!("failed to decode config file {path:?}: {e}"))?;
        for f in unknown {
            tracing::warn!(
                field = f,
                "unknown field in KubeProxyConfiguration; ignored"
            );
        }
        Ok(cfg)
    }

    /// The mode in effect (`""` is iptables on Linux, as upstream).
    pub fn proxy_mode(&self) -> &str {
        if self.mode.is_empty() {
            "iptables"
        } else {
            &self.mode
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.proxy_mode(), "iptables" | "nftables") {
            return Err(format!(
                "KubeProxyConfiguration.Mode: Invalid value: {:?}: must be iptables, nftables (ipvs is not available)",
                self.mode
            ));
        }
        if !(0..=31).contains(&self.iptables.masquerade_bit) {
            return Err("KubeProxyConfiguration.IPTables.MasqueradeBit: Invalid value: must be within the range [0, 31]".into());
        }
        for (n, v) in [
            ("SyncPeriod", &self.iptables.sync_period),
            ("MinSyncPeriod", &self.iptables.min_sync_period),
        ] {
            apimachinery::duration::parse(v).map_err(|e| {
                format!("KubeProxyConfiguration.IPTables.{n}: Invalid value: {v:?}: {e}")
            })?;
        }
        if !self.cluster_cidr.is_empty() {
            for c in self.cluster_cidr.split(',') {
                if !c.contains('/') {
                    return Err(format!(
                        "KubeProxyConfiguration.ClusterCIDR: Invalid value: {c:?}: must be a valid CIDR block"
                    ));
                }
            }
        }
        Ok(())
    }
}

pub fn duration(s: &str) -> std::time::Duration {
    apimachinery::duration::parse(s).unwrap_or(std::time::Duration::from_secs(1))
}

/// The configuration as a `--config` file (JSON is YAML).
pub fn to_yaml(cfg: &KubeProxyConfiguration) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default() + "\n"
}
