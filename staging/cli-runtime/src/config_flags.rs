//! The connection flags every kubectl command takes, and the client they build from
//! the kubeconfig: `KUBECONFIG` (merged, first file wins) or `~/.kube/config`, or
//! `--kubeconfig` alone, then `--context`/`--cluster`/`--user`, then the explicit
//! overrides. Upstream twins: `cli-runtime/pkg/genericclioptions/config_flags.go`,
//! `client-go/tools/clientcmd`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigFlags {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "path")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true, default_value = "")]
    pub context: String,
    /// The name of the kubeconfig cluster to use
    #[arg(long, global = true, default_value = "")]
    pub cluster: String,
    /// The name of the kubeconfig user to use
    #[arg(long, global = true, default_value = "")]
    pub user: String,
    /// If present, the namespace scope for this CLI request
    #[arg(short = 'n', long, global = true, default_value = "")]
    pub namespace: String,
    /// The address and port of the Kubernetes API server
    #[arg(short = 's', long, global = true, default_value = "")]
    pub server: String,
    /// Bearer token for authentication to the API server
    #[arg(long, global = true, default_value = "")]
    pub token: String,
    /// Path to a cert file for the certificate authority
    #[arg(long = "certificate-authority", global = true, default_value = "")]
    pub certificate_authority: String,
    /// Path to a client certificate file for TLS
    #[arg(long = "client-certificate", global = true, default_value = "")]
    pub client_certificate: String,
    /// Path to a client key file for TLS
    #[arg(long = "client-key", global = true, default_value = "")]
    pub client_key: String,
    /// If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure
    #[arg(long = "insecure-skip-tls-verify", global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation. If it is not provided, the hostname used to contact the server is used
    #[arg(long = "tls-server-name", global = true, default_value = "")]
    pub tls_server_name: String,
    /// Username to impersonate for the operation. User could be a regular user or a service account in a namespace.
    #[arg(long = "as", global = true, default_value = "")]
    pub impersonate: String,
    /// Group to impersonate for the operation, this flag can be repeated to specify multiple groups.
    #[arg(long = "as-group", global = true)]
    pub impersonate_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", global = true, default_value = "")]
    pub impersonate_uid: String,
    /// The length of time to wait before giving up on a single server request. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests.
    #[arg(long = "request-timeout", global = true, default_value = "0")]
    pub request_timeout: String,
    /// Default cache directory
    #[arg(long = "cache-dir", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// If true, opt-out of response compression for all requests to the server
    #[arg(long = "disable-compression", global = true)]
    pub disable_compression: bool,
    /// number for the log level verbosity
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    pub verbosity: u8,
    /// Treat warnings received from the server as errors and exit with a non-zero exit code
    #[arg(long = "warnings-as-errors", global = true)]
    pub warnings_as_errors: bool,
}

/// What the loaded kubeconfig and flags decided.
pub struct Loaded {
    pub config: kube::Config,
    /// The request namespace, and whether `--namespace` set it (clientcmd's "overridden",
    /// which the builder enforces on objects from files; a context's namespace is only
    /// the default for objects that name none).
    pub namespace: String,
    pub namespace_explicit: bool,
}

impl ConfigFlags {
    /// The merged kubeconfig, before any override (what `kubectl config view` shows).
    pub fn raw_config(&self) -> Result<Kubeconfig, String> {
        if let Some(path) = &self.kubeconfig {
            return Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(path, e));
        }
        if let Some(value) = std::env::var_os("KUBECONFIG") {
            let mut merged = Kubeconfig::default();
            for path in std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()) {
                // Missing files in KUBECONFIG are skipped, as clientcmd does.
                if !path.exists() {
                    continue;
                }
                let kc = Kubeconfig::read_from(&path).map_err(|e| kubeconfig_error(&path, e))?;
                merged = merged.merge(kc).map_err(|e| e.to_string())?;
            }
            return Ok(merged);
        }
        match default_path() {
            Some(p) if p.exists() => Kubeconfig::read_from(&p).map_err(|e| kubeconfig_error(&p, e)),
            _ => Ok(Kubeconfig::default()),
        }
    }

    /// The file `kubectl config` commands write: `--kubeconfig`, the first file of
    /// `KUBECONFIG`, or `~/.kube/config`.
    pub fn config_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.kubeconfig {
            return Some(p.clone());
        }
        if let Some(value) = std::env::var_os("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            if let Some(p) = paths.iter().find(|p| p.exists()).or(paths.last()) {
                return Some(p.clone());
            }
        }
        default_path()
    }

    /// The client configuration: kubeconfig selection, then overrides.
    pub async fn load(&self) -> Result<Loaded, String> {
        let raw = self.raw_config()?;
        let context_name = non_empty(&self.context).or(raw.current_context.clone());
        let context = context_name.as_ref().and_then(|n| {
            raw.contexts
                .iter()
                .find(|c| &c.name == n)
                .and_then(|c| c.context.clone())
        });
        if let Some(n) = non_empty(&self.context)
            && context.is_none()
        {
            return Err(format!("context was not found for specified context: {n}"));
        }
        let context_namespace = context.as_ref().and_then(|c| c.namespace.clone());
        let mut config = if raw.clusters.is_empty() && !self.server.is_empty() {
            kube::Config::new(
                self.server
                    .parse()
                    .map_err(|e| format!("invalid server {:?}: {e}", self.server))?,
            )
        } else if raw.clusters.is_empty() && raw.contexts.is_empty() {
            return Err(NO_CONFIG.into());
        } else {
            let options = KubeConfigOptions {
                context: context_name.clone(),
                cluster: non_empty(&self.cluster),
                user: non_empty(&self.user),
            };
            kube::Config::from_custom_kubeconfig(raw, &options)
                .await
                .map_err(|e| format!("error loading config: {e}"))?
        };
        self.apply_overrides(&mut config)?;
        let (namespace, namespace_explicit) = match (non_empty(&self.namespace), context_namespace)
        {
            (Some(ns), _) => (ns, true),
            (None, Some(ns)) if !ns.is_empty() => (ns, false),
            _ => ("default".to_string(), false),
        };
        Ok(Loaded {
            config,
            namespace,
            namespace_explicit,
        })
    }

    fn apply_overrides(&self, config: &mut kube::Config) -> Result<(), String> {
        if !self.server.is_empty() {
            config.cluster_url = self
                .server
                .parse()
                .map_err(|e| format!("invalid server {:?}: {e}", self.server))?;
        }
        if !self.certificate_authority.is_empty() {
            let pem = std::fs::read(&self.certificate_authority).map_err(|e| {
                format!(
                    "unable to read certificate-authority {} for  due to {e}",
                    self.certificate_authority
                )
            })?;
            config.root_cert = Some(pem_blocks(&pem));
        }
        if self.insecure_skip_tls_verify {
            config.accept_invalid_certs = true;
            config.root_cert = None;
        }
        if !self.tls_server_name.is_empty() {
            config.tls_server_name = Some(self.tls_server_name.clone());
        }
        if !self.token.is_empty() {
            config.auth_info.token = Some(self.token.clone().into());
            config.auth_info.token_file = None;
            config.auth_info.exec = None;
        }
        if !self.client_certificate.is_empty() {
            config.auth_info.client_certificate = Some(self.client_certificate.clone());
            config.auth_info.client_certificate_data = None;
        }
        if !self.client_key.is_empty() {
            config.auth_info.client_key = Some(self.client_key.clone());
            config.auth_info.client_key_data = None;
        }
        if self.disable_compression {
            config.disable_compression = true;
        }
        let timeout = parse_duration(&self.request_timeout)?;
        if !timeout.is_zero() {
            config.read_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        // Impersonation travels as headers (kube's client does not send them itself).
        let user = non_empty(&self.impersonate).or(config.auth_info.impersonate.clone());
        let groups = if self.impersonate_group.is_empty() {
            config
                .auth_info
                .impersonate_groups
                .clone()
                .unwrap_or_default()
        } else {
            self.impersonate_group.clone()
        };
        let uid = non_empty(&self.impersonate_uid).or(config.auth_info.impersonate_uid.clone());
        if user.is_none() && (!groups.is_empty() || uid.is_some()) {
            return Err(
                "requesting uid, groups or user-extra for  without impersonating a user".into(),
            );
        }
        let mut push = |name: &str, value: &str| -> Result<(), String> {
            config.headers.push((
                http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
                http::HeaderValue::from_str(value).map_err(|e| format!("{name}: {e}"))?,
            ));
            Ok(())
        };
        if let Some(u) = &user {
            push("Impersonate-User", u)?;
        }
        for g in &groups {
            push("Impersonate-Group", g)?;
        }
        if let Some(u) = &uid {
            push("Impersonate-Uid", u)?;
        }
        if let Some(extra) = &config.auth_info.impersonate_user_extra.clone() {
            for (k, values) in extra {
                for v in values {
                    push(&format!("Impersonate-Extra-{k}"), v)?;
                }
            }
        }
        Ok(())
    }

    /// Where discovery is cached: `--cache-dir`, `$KUBECACHEDIR`, or `~/.kube/cache`.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.cache_dir {
            return Some(d.clone());
        }
        if let Some(d) = std::env::var_os("KUBECACHEDIR") {
            return Some(PathBuf::from(d));
        }
        home().map(|h| h.join(".kube").join("cache"))
    }
}

pub const NO_CONFIG: &str = "The connection to the server localhost:8080 was refused - did you specify the right host or port?";

fn kubeconfig_error(path: &std::path::Path, e: kube::config::KubeconfigError) -> String {
    format!("error loading config file \"{}\": {e}", path.display())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn default_path() -> Option<PathBuf> {
    home().map(|h| h.join(".kube").join("config"))
}

/// The DER of every certificate in a PEM bundle.
fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN CERTIFICATE") {
            cur = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            if let Some(b64) = cur.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                out.push(der);
            }
        } else if let Some(c) = cur.as_mut() {
            c.push_str(line);
        }
    }
    out
}

/// Go's `time.ParseDuration` as kubectl's duration flags read it; a bare number means
/// seconds for `--request-timeout`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(std::time::Duration::ZERO);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    apimachinery::duration::parse(s).map_err(|e| format!("time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), std::time::Duration::ZERO);
        assert_eq!(parse_duration("1m30s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("5").unwrap().as_secs(), 5);
        assert!(parse_duration("5x").is_err());
    }
}
