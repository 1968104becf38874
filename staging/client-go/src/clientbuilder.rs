//! Per-controller clients (upstream `k8s.io/controller-manager/pkg/clientbuilder`):
//! with `--use-service-account-credentials` each controller acts as its own
//! `kube-system` ServiceAccount (created if missing), authenticated by a bound token
//! from the TokenRequest API that is renewed well before it expires; otherwise every
//! controller shares the root client.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Upstream asks for hour-long tokens and renews them at 80 % of their life.
const TOKEN_SECONDS: i64 = 3600;
const NAMESPACE: &str = "kube-system";

pub struct ClientBuilder {
    mode: Mode,
    /// One client (and one token renewal) per account.
    built: tokio::sync::Mutex<HashMap<String, kube::Client>>,
}

enum Mode {
    Root(kube::Client),
    ServiceAccounts {
        root: kube::Client,
        config: Box<kube::Config>,
        /// Where each controller's current token is kept (read back by the client).
        dir: PathBuf,
    },
}

async fn request_token(root: &kube::Client, name: &str) -> Result<String, String> {
    let api: Api<ServiceAccount> = Api::namespaced(root.clone(), NAMESPACE);
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let out: TokenRequest = api
        .create_subresource("token", name, &PostParams::default(), &tr)
        .await
        .map_err(|e| format!("requesting a token for {NAMESPACE}/{name}: {e}"))?;
    Ok(out.status.map(|s| s.token).unwrap_or_default())
}

impl ClientBuilder {
    /// Every controller uses `root`.
    pub fn root(root: kube::Client) -> Self {
        ClientBuilder {
            mode: Mode::Root(root),
            built: Default::default(),
        }
    }

    /// A builder for `--use-service-account-credentials` (tokens kept under `dir`).
    pub fn service_accounts(root: kube::Client, config: kube::Config, dir: PathBuf) -> Self {
        ClientBuilder {
            mode: Mode::ServiceAccounts {
                root,
                config: Box::new(config),
                dir,
            },
            built: Default::default(),
        }
    }

    /// Removes the kept tokens (at shutdown).
    pub fn cleanup(&self) {
        if let Mode::ServiceAccounts { dir, .. } = &self.mode {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The client the controller running as `name` uses.
    pub async fn client(&self, name: &str) -> Result<kube::Client, String> {
        let mut built = self.built.lock().await;
        if let Some(c) = built.get(name) {
            return Ok(c.clone());
        }
        let c = self.build(name).await?;
        built.insert(name.to_string(), c.clone());
        Ok(c)
    }

    async fn build(&self, name: &str) -> Result<kube::Client, String> {
        let (root, config, dir) = match &self.mode {
            Mode::Root(c) => return Ok(c.clone()),
            Mode::ServiceAccounts { root, config, dir } => (root, config, dir),
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(root.clone(), NAMESPACE);
        if accounts
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NAMESPACE.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match accounts.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(format!("creating {NAMESPACE}/{name}: {e}")),
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(name);
        write_private(&file, &request_token(root, name).await?)?;
        // Renew in the background; the client re-reads the file every minute.
        let (root2, name2, file2) = (root.clone(), name.to_string(), file.clone());
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(TOKEN_SECONDS as u64 * 8 / 10);
            loop {
                tokio::time::sleep(wait).await;
                match request_token(&root2, &name2).await {
                    Ok(t) => {
                        if let Err(e) = write_private(&file2, &t) {
                            tracing::warn!(error = %e, "storing a renewed controller token");
                        }
                        wait = Duration::from_secs(TOKEN_SECONDS as u64 * 8 / 10);
                    }
                    Err(e) => {
                        tracing::warn!(account = name2, error = %e, "renewing a controller token; retrying");
                        wait = Duration::from_secs(10);
                    }
                }
            }
        });
        let mut cfg = config.as_ref().clone();
        let auth = &mut cfg.auth_info;
        *auth = kube::config::AuthInfo {
            token_file: Some(file.display().to_string()),
            ..Default::default()
        };
        kube::Client::try_from(cfg).map_err(|e| format!("building the {name} client: {e}"))
    }
}

/// Writes a secret readable by the owner only, replacing the old one atomically.
fn write_private(path: &std::path::Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(content.as_bytes())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
