//! Idempotent object writes (upstream `cmd/kubeadm/app/util/apiclient/idempotency.go`):
//! create, or on AlreadyExists replace what is there, so that every phase can run again.

use kube::Resource;
use kube::api::{Api, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

pub async fn create_or_update<K>(api: &Api<K>, obj: &K) -> Result<(), String>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let current = api
                .get(&name)
                .await
                .map_err(|e| format!("unable to get {name:?}: {e}"))?;
            let mut next = obj.clone();
            next.meta_mut().resource_version = current.meta().resource_version.clone();
            api.replace(&name, &PostParams::default(), &next)
                .await
                .map(|_| ())
                .map_err(|e| format!("unable to update {name:?}: {e}"))
        }
        Err(e) => Err(format!("unable to create {name:?}: {e}")),
    }
}

/// An object from its JSON form (the RBAC objects and ConfigMaps the phases write).
pub fn from_json<K: DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("a well-formed object")
}

/// A client configuration without credentials for `server`, verified with `ca_pem`, or,
/// without one, not verified: for what is trusted by other means (cluster-info, checked
/// against the token's signature and the CA pin) or carries no trust at all (health
/// answers of components serving self-signed certificates on localhost).
pub fn anonymous_config(server: &str, ca_pem: Option<&str>) -> Result<kube::Config, String> {
    let mut cfg = kube::Config::new(server.parse().map_err(|e| format!("{server}: {e}"))?);
    match ca_pem {
        Some(pem) => {
            let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .map_err(|e| format!("cluster CA: {e}"))?;
            cfg.root_cert = Some(vec![p.contents.clone()]);
        }
        None => cfg.accept_invalid_certs = true,
    }
    Ok(cfg)
}
