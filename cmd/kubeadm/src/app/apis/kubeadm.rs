//! kubeadm's configuration (`kubeadm.k8s.io/v1beta4`, upstream
//! `cmd/kubeadm/app/apis/kubeadm/v1beta4`): `InitConfiguration` and
//! `ClusterConfiguration` documents from `--config`, with upstream's defaults. Decoding
//! is strict, as upstream's: a field this kubeadm does not implement yet (e.g.
//! `skipPhases`) is refused by name rather than ignored.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta4";
pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InitConfiguration {
    pub api_version: String,
    pub kind: String,
    pub bootstrap_tokens: Vec<BootstrapToken>,
    pub node_registration: NodeRegistration,
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    /// The key `--upload-certs` encrypts the shared certificates with.
    pub certificate_key: String,
}

impl Default for InitConfiguration {
    fn default() -> Self {
        InitConfiguration {
            api_version: API_VERSION.into(),
            kind: "InitConfiguration".into(),
            bootstrap_tokens: vec![BootstrapToken::default()],
            node_registration: NodeRegistration::default(),
            local_api_endpoint: ApiEndpoint::default(),
            certificate_key: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BootstrapToken {
    pub token: String,
    pub description: String,
    pub ttl: String,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

impl Default for BootstrapToken {
    fn default() -> Self {
        BootstrapToken {
            token: String::new(),
            description: String::new(),
            ttl: "24h0m0s".into(),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![DEFAULT_NODE_TOKEN_GROUP.into()],
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NodeRegistration {
    pub name: String,
    pub cri_socket: String,
    pub taints: Option<Vec<serde_json::Value>>,
    pub ignore_preflight_errors: Vec<String>,
}

pub const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiEndpoint {
    pub advertise_address: String,
    pub bind_port: u16,
}

impl Default for ApiEndpoint {
    fn default() -> Self {
        ApiEndpoint {
            advertise_address: String::new(),
            bind_port: 6443,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClusterConfiguration {
    pub api_version: String,
    pub kind: String,
    pub cluster_name: String,
    pub kubernetes_version: String,
    pub image_repository: String,
    pub control_plane_endpoint: String,
    pub certificates_dir: String,
    pub encryption_algorithm: String,
    pub ca_certificate_validity_period: String,
    pub certificate_validity_period: String,
    pub networking: Networking,
    pub api_server: ApiServer,
    pub etcd: Etcd,
}

impl Default for ClusterConfiguration {
    fn default() -> Self {
        ClusterConfiguration {
            api_version: API_VERSION.into(),
            kind: "ClusterConfiguration".into(),
            cluster_name: "kubernetes".into(),
            kubernetes_version: "v1.35.0".into(),
            image_repository: "registry.k8s.io".into(),
            control_plane_endpoint: String::new(),
            certificates_dir: DEFAULT_CERT_DIR.into(),
            encryption_algorithm: "RSA-2048".into(),
            ca_certificate_validity_period: "87600h0m0s".into(),
            certificate_validity_period: "8760h0m0s".into(),
            networking: Networking::default(),
            api_server: ApiServer::default(),
            etcd: Etcd::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Networking {
    pub service_subnet: String,
    pub pod_subnet: String,
    pub dns_domain: String,
}

impl Default for Networking {
    fn default() -> Self {
        Networking {
            service_subnet: DEFAULT_SERVICE_SUBNET.into(),
            pod_subnet: String::new(),
            dns_domain: "cluster.local".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiServer {
    #[serde(rename = "certSANs")]
    pub cert_sans: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Etcd {
    pub local: Option<LocalEtcd>,
    pub external: Option<ExternalEtcd>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocalEtcd {
    pub data_dir: String,
    #[serde(rename = "serverCertSANs")]
    pub server_cert_sans: Vec<String>,
    #[serde(rename = "peerCertSANs")]
    pub peer_cert_sans: Vec<String>,
}

impl Default for LocalEtcd {
    fn default() -> Self {
        LocalEtcd {
            data_dir: "/var/lib/etcd".into(),
            server_cert_sans: Vec::new(),
            peer_cert_sans: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExternalEtcd {
    pub endpoints: Vec<String>,
    #[serde(rename = "caFile")]
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
}

/// The documents `kubeadm init` works from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InitConfig {
    pub init: InitConfiguration,
    pub cluster: ClusterConfiguration,
    /// A `KubeletConfiguration` document: merged over kubeadm's kubelet defaults.
    pub kubelet: Option<serde_json::Value>,
}

fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

impl InitConfig {
    /// Reads `--config` (YAML documents separated by `---`); documents of other kinds
    /// (KubeletConfiguration, KubeProxyConfiguration) are refused until supported.
    pub fn load(text: &str) -> Result<Self, String> {
        let mut cfg = InitConfig::default();
        for doc in text.split("\n---") {
            let doc = doc.trim_start_matches("---").trim();
            if doc.is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_saphyr::from_str(doc).map_err(|e| format!("parsing the config: {e}"))?;
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let kind = kind.as_str();
            let version = value["apiVersion"].as_str().unwrap_or_default().to_string();
            if version != API_VERSION && kind != "KubeletConfiguration" {
                return Err(format!(
                    "no kind {kind:?} is registered for version {version:?}: this kubeadm reads {API_VERSION}"
                ));
            }
            let strict = |e: serde_json::Error| format!("{kind}: strict decoding error: {e}");
            match kind {
                "InitConfiguration" => {
                    cfg.init = serde_json::from_value(value).map_err(strict)?;
                }
                "ClusterConfiguration" => {
                    cfg.cluster = serde_json::from_value(value).map_err(strict)?;
                }
                "KubeletConfiguration" => {
                    if !version.starts_with("kubelet.config.k8s.io/") {
                        return Err(format!(
                            "KubeletConfiguration: unsupported apiVersion {version:?}"
                        ));
                    }
                    cfg.kubelet = Some(value);
                }
                other => {
                    return Err(format!(
                        "kind {other:?} in the config is not supported by this kubeadm yet"
                    ));
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The cluster-wide KubeletConfiguration kubeadm uploads (upstream's kubelet
    /// component config defaults), with the config file's document merged over it.
    pub fn kubelet_configuration(&self) -> Result<serde_json::Value, String> {
        let dns = super::super::phases::certs::nth_service_ip(
            &self.cluster.networking.service_subnet,
            10,
        )?;
        let mut v = serde_json::json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": false},
                "webhook": {"enabled": true},
                "x509": {"clientCAFile": format!("{}/ca.crt", self.cluster.certificates_dir)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "systemd",
            "clusterDNS": [dns.to_string()],
            "clusterDomain": self.cluster.networking.dns_domain,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "rotateCertificates": true,
            "staticPodPath": format!("{KUBERNETES_DIR}/manifests"),
        });
        if let Some(over) = &self.kubelet {
            merge(&mut v, over);
        }
        Ok(v)
    }
}

impl InitConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        let c = &self.cluster;
        if !matches!(
            c.encryption_algorithm.as_str(),
            "RSA-2048" | "RSA-3072" | "RSA-4096" | "ECDSA-P256" | "ECDSA-P384"
        ) {
            errs.push(format!(
                "encryptionAlgorithm: Unsupported value: {:?}: supported values: \"ECDSA-P256\", \"ECDSA-P384\", \"RSA-2048\", \"RSA-3072\", \"RSA-4096\"",
                c.encryption_algorithm
            ));
        }
        for (name, v) in [
            (
                "caCertificateValidityPeriod",
                &c.ca_certificate_validity_period,
            ),
            ("certificateValidityPeriod", &c.certificate_validity_period),
        ] {
            if let Err(e) = apimachinery::duration::parse(v) {
                errs.push(format!("{name}: Invalid value: {v:?}: {e}"));
            }
        }
        if c.etcd.local.is_some() && c.etcd.external.is_some() {
            errs.push(
                "etcd: Invalid value: \"\": etcd.local and etcd.external are mutually exclusive"
                    .into(),
            );
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }

    pub fn ca_validity(&self) -> Duration {
        apimachinery::duration::parse(&self.cluster.ca_certificate_validity_period)
            .unwrap_or(Duration::from_secs(87600 * 3600))
    }

    pub fn cert_validity(&self) -> Duration {
        apimachinery::duration::parse(&self.cluster.certificate_validity_period)
            .unwrap_or(Duration::from_secs(8760 * 3600))
    }

    /// A control-plane or add-on image: `<imageRepository>/<name>:<kubernetesVersion>`.
    pub fn image(&self, name: &str) -> String {
        format!(
            "{}/{name}:{}",
            self.cluster.image_repository, self.cluster.kubernetes_version
        )
    }

    /// The CRI endpoint of this node (`nodeRegistration.criSocket`, containerd's
    /// socket by default).
    pub fn cri_socket(&self) -> &str {
        match self.init.node_registration.cri_socket.as_str() {
            "" => DEFAULT_CRI_SOCKET,
            s => s,
        }
    }

    /// Stacked etcd unless external endpoints are configured.
    pub fn local_etcd(&self) -> bool {
        self.cluster.etcd.external.is_none()
    }

    /// The API server's URL as other components reach it: `controlPlaneEndpoint` when
    /// set (a port defaults to the bind port), else the advertise address.
    pub fn control_plane_url(&self) -> String {
        let ep = &self.cluster.control_plane_endpoint;
        if ep.is_empty() {
            return self.local_url();
        }
        if ep
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !ep.ends_with(']')
        {
            format!("https://{ep}")
        } else {
            format!("https://{ep}:{}", self.init.local_api_endpoint.bind_port)
        }
    }

    /// This node's API server (`localAPIEndpoint`).
    pub fn local_url(&self) -> String {
        let a = &self.init.local_api_endpoint;
        let host = if a.advertise_address.contains(':') {
            format!("[{}]", a.advertise_address)
        } else {
            a.advertise_address.clone()
        };
        format!("https://{host}:{}", a.bind_port)
    }
}

/// `kubeadm upgrade` settings (`kind: UpgradeConfiguration`). Decoded strictly: the
/// fields not listed here (dryRun, patches, skipPhases, imagePullPolicy …) are refused
/// by name.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpgradeConfiguration {
    pub api_version: String,
    pub kind: String,
    pub apply: UpgradeApplyConfiguration,
    pub node: UpgradeNodeConfiguration,
    pub plan: UpgradePlanConfiguration,
    pub timeouts: UpgradeTimeouts,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpgradeApplyConfiguration {
    pub kubernetes_version: String,
    pub allow_experimental_upgrades: bool,
    #[serde(rename = "allowRCUpgrades")]
    pub allow_rc_upgrades: bool,
    pub certificate_renewal: Option<bool>,
    pub etcd_upgrade: Option<bool>,
    pub force_upgrade: bool,
    pub ignore_preflight_errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpgradeNodeConfiguration {
    pub certificate_renewal: Option<bool>,
    pub etcd_upgrade: Option<bool>,
    pub ignore_preflight_errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpgradePlanConfiguration {
    pub kubernetes_version: String,
    pub allow_experimental_upgrades: bool,
    #[serde(rename = "allowRCUpgrades")]
    pub allow_rc_upgrades: bool,
    pub ignore_preflight_errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpgradeTimeouts {
    /// How long each static Pod may take to come back upgraded (5m by default).
    pub upgrade_manifests: Option<String>,
}

impl UpgradeConfiguration {
    /// Reads `--config`: one UpgradeConfiguration document.
    pub fn load(text: &str) -> Result<Self, String> {
        let mut found = None;
        for doc in text.split("\n---") {
            let doc = doc.trim_start_matches("---").trim();
            if doc.is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_saphyr::from_str(doc).map_err(|e| format!("parsing the config: {e}"))?;
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let version = value["apiVersion"].as_str().unwrap_or_default().to_string();
            if version != API_VERSION || kind != "UpgradeConfiguration" {
                return Err(format!(
                    "kind {kind:?} of version {version:?} is not an UpgradeConfiguration of {API_VERSION}"
                ));
            }
            found = Some(
                serde_json::from_value(value)
                    .map_err(|e| format!("UpgradeConfiguration: strict decoding error: {e}"))?,
            );
        }
        found.ok_or_else(|| "no UpgradeConfiguration in the config".to_string())
    }

    /// `--config`'s UpgradeConfiguration, or the defaults without one.
    pub fn read(path: Option<&std::path::Path>) -> Result<Self, String> {
        match path {
            Some(p) => Self::load(
                &std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
            ),
            None => Ok(Self::default()),
        }
    }

    /// `timeouts.upgradeManifests`, 5 minutes when unset.
    pub fn upgrade_manifests_timeout(&self) -> Result<Duration, String> {
        match &self.timeouts.upgrade_manifests {
            None => Ok(Duration::from_secs(300)),
            Some(t) => apimachinery::duration::parse(t)
                .map_err(|e| format!("timeouts.upgradeManifests: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_configuration_is_decoded_strictly() {
        let c = UpgradeConfiguration::load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply:\n  kubernetesVersion: v1.35.1\n  forceUpgrade: true\n  etcdUpgrade: false\ntimeouts:\n  upgradeManifests: 40s\n",
        )
        .unwrap();
        assert_eq!(c.apply.kubernetes_version, "v1.35.1");
        assert!(c.apply.force_upgrade);
        assert_eq!(c.apply.etcd_upgrade, Some(false));
        assert_eq!(
            c.upgrade_manifests_timeout().unwrap(),
            Duration::from_secs(40)
        );
        let e = UpgradeConfiguration::load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply:\n  dryRun: true\n",
        )
        .unwrap_err();
        assert!(e.contains("dryRun"), "{e}");
        assert!(
            UpgradeConfiguration::load(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
            )
            .is_err()
        );
    }

    #[test]
    fn documents_default_and_refuse_unknown_fields() {
        let cfg = InitConfig::load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.5\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: cp.example:7443\nnetworking:\n  podSubnet: 10.244.0.0/16\n",
        )
        .unwrap();
        assert_eq!(cfg.init.local_api_endpoint.bind_port, 6443);
        assert_eq!(
            cfg.cluster.networking.service_subnet,
            DEFAULT_SERVICE_SUBNET
        );
        assert_eq!(cfg.cluster.networking.pod_subnet, "10.244.0.0/16");
        assert_eq!(cfg.control_plane_url(), "https://cp.example:7443");
        assert_eq!(cfg.local_url(), "https://10.0.0.5:6443");
        assert_eq!(cfg.init.bootstrap_tokens[0].ttl, "24h0m0s");
        let e = InitConfig::load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates: {}\n",
        )
        .unwrap_err();
        assert!(
            e.contains("strict decoding error") && e.contains("featureGates"),
            "{e}"
        );
        let e =
            InitConfig::load("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n")
                .unwrap_err();
        assert!(e.contains("v1beta3"), "{e}");
        let e = InitConfig::load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: DSA\n",
        )
        .unwrap_err();
        assert!(e.contains("encryptionAlgorithm"), "{e}");
    }
}
