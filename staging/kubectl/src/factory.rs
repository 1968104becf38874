//! What every command gets its client, namespace and discovery from, built lazily so
//! that `kubectl version --client` or `kubectl config` never touch the network.
//! Upstream twin: `kubectl/pkg/cmd/util/factory.go`.

use crate::error::CmdError;
use cli_runtime::client::RestClient;
use cli_runtime::config_flags::ConfigFlags;
use cli_runtime::discovery::{ApiResource, Discovery};
use cli_runtime::resource::{self, Selection};

pub struct Factory {
    pub flags: ConfigFlags,
    client: Option<RestClient>,
    namespace: Option<(String, bool)>,
    discovery: Option<Discovery>,
}

impl Factory {
    pub fn new(flags: ConfigFlags) -> Factory {
        Factory {
            flags,
            client: None,
            namespace: None,
            discovery: None,
        }
    }

    async fn init(&mut self) -> Result<(), CmdError> {
        if self.client.is_none() {
            let loaded = self.flags.load().await.map_err(CmdError::plain)?;
            self.client =
                Some(RestClient::new(loaded.config, self.flags.verbosity).map_err(CmdError::msg)?);
            self.namespace = Some((loaded.namespace, loaded.namespace_explicit));
        }
        Ok(())
    }

    pub async fn client(&mut self) -> Result<RestClient, CmdError> {
        self.init().await?;
        Ok(self.client.clone().expect("initialised"))
    }

    /// The request namespace and whether `--namespace` asked for it.
    pub async fn namespace(&mut self) -> Result<(String, bool), CmdError> {
        self.init().await?;
        Ok(self.namespace.clone().expect("initialised"))
    }

    pub async fn discovery(&mut self) -> Result<&Discovery, CmdError> {
        if self.discovery.is_none() {
            let client = self.client().await?;
            let cache = self.flags.cache_dir();
            let d = Discovery::load(&client, cache.as_deref()).await?;
            self.discovery = Some(d);
        }
        Ok(self.discovery.as_ref().expect("loaded"))
    }

    /// Discovery straight from the server (the cache is rewritten).
    pub async fn fresh_discovery(&mut self) -> Result<&Discovery, CmdError> {
        let client = self.client().await?;
        let cache = self.flags.cache_dir();
        let d = Discovery::fetch(&client, cache.as_deref()).await?;
        self.discovery = Some(d);
        Ok(self.discovery.as_ref().expect("loaded"))
    }

    /// Resolves command arguments, re-reading discovery once when the cache does not
    /// know a type (it may be a CRD created since).
    pub async fn selections(&mut self, args: &[String]) -> Result<Vec<Selection>, CmdError> {
        let first = resource::parse_args(self.discovery().await?, args);
        match first {
            Ok(s) => Ok(s),
            Err(e) if !self.discovery.as_ref().is_some_and(|d| d.fresh) => {
                let _ = e;
                resource::parse_args(self.fresh_discovery().await?, args).map_err(CmdError::msg)
            }
            Err(e) => Err(CmdError::msg(e)),
        }
    }

    /// What `-f` names: each object's resource, namespace (its own, else the request's)
    /// and name.
    pub async fn file_targets(
        &mut self,
        filenames: &[String],
        recursive: bool,
    ) -> Result<Vec<(ApiResource, String, String)>, CmdError> {
        let (namespace, _) = self.namespace().await?;
        let mut out = Vec::new();
        for o in resource::read_files(filenames, recursive)
            .await
            .map_err(CmdError::msg)?
        {
            let r = self.mapping_for_object(&o.object).await?;
            let meta = &o.object["metadata"];
            let ns = meta["namespace"].as_str().unwrap_or(&namespace).to_string();
            out.push((r, ns, meta["name"].as_str().unwrap_or_default().to_string()));
        }
        Ok(out)
    }

    /// The resource for an object's `apiVersion` and `kind`.
    pub async fn mapping_for_object(
        &mut self,
        obj: &serde_json::Value,
    ) -> Result<ApiResource, CmdError> {
        let av = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        if let Some(r) = self.discovery().await?.resource_for_kind(&av, &kind) {
            return Ok(r.clone());
        }
        if !self.discovery.as_ref().is_some_and(|d| d.fresh)
            && let Some(r) = self.fresh_discovery().await?.resource_for_kind(&av, &kind)
        {
            return Ok(r.clone());
        }
        let group = av.split_once('/').map(|(g, _)| g).unwrap_or("");
        let version = av.rsplit('/').next().unwrap_or_default();
        Err(CmdError::msg(format!(
            "resource mapping not found for name: {:?} namespace: {:?} from \"\": no matches for kind {kind:?} in version {:?}\nensure CRDs are installed first",
            obj["metadata"]["name"].as_str().unwrap_or_default(),
            obj["metadata"]["namespace"].as_str().unwrap_or_default(),
            if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            },
        )))
    }
}
