//! ServiceAccount (upstream `plugin/pkg/admission/serviceaccount`): a pod runs as its
//! namespace's `default` service account unless it names one, the account must exist,
//! the account's `imagePullSecrets` are copied to a pod that names none, and unless
//! either opts out of automounting, the pod gets the projected
//! `kube-api-access-<suffix>` volume (a bound token, the cluster CA, the namespace)
//! mounted in every container at `/var/run/secrets/kubernetes.io/serviceaccount`.

use super::get;
use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// What the kubelet asks for; the issuer extends it (see `WARN_ONLY_EXPIRATION`).
const TOKEN_EXPIRATION: i64 = 3607;
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

pub struct ServiceAccount {
    pub serviceaccounts: Arc<Registry>,
}

/// Upstream's name-suffix alphabet (no vowels, no confusable characters).
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn projected_volume(name: &str) -> Value {
    json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}})
}

#[async_trait]
impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(&self, a: &Attributes<'_>, obj: Option<&mut Value>) -> Result<(), StatusError> {
        let Some(pod) = obj else { return Ok(()) };
        if !a.is("", "pods") || !a.subresource.is_empty() || a.operation != Operation::Create {
            return Ok(());
        }
        let forbid =
            |msg: String| StatusError::forbidden(&GroupResource::new("", "pods"), a.name, &msg);
        if pod["metadata"]["annotations"][MIRROR_ANNOTATION].is_string() {
            if pod["spec"]["serviceAccountName"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
            {
                return Err(forbid(
                    "a mirror pod may not reference service accounts".into(),
                ));
            }
            return Ok(());
        }
        let name = pod["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        pod["spec"]["serviceAccountName"] = json!(name);
        pod["spec"]["serviceAccount"] = json!(name);
        let Some(sa) = get(&self.serviceaccounts, Some(a.namespace), &name).await else {
            return Err(forbid(format!(
                "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
                a.namespace
            )));
        };
        // The account's pull secrets, unless the pod names its own (upstream).
        let own = pod["spec"]["imagePullSecrets"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        if !own && let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|a| !a.is_empty()) {
            pod["spec"]["imagePullSecrets"] = json!(secrets);
        }
        let automount = match pod["spec"]["automountServiceAccountToken"].as_bool() {
            Some(b) => b,
            None => sa["automountServiceAccountToken"].as_bool().unwrap_or(true),
        };
        if !automount {
            return Ok(());
        }
        // A volume already mounted at the token path means the pod brings its own.
        let mounted = ["initContainers", "containers"].iter().any(|k| {
            pod["spec"][k].as_array().into_iter().flatten().any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == MOUNT_PATH)
            })
        });
        if mounted {
            return Ok(());
        }
        let volume = format!("kube-api-access-{}", suffix());
        let spec = pod["spec"]
            .as_object_mut()
            .expect("a decoded pod has a spec");
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(v) = volumes.as_array_mut() {
            v.push(projected_volume(&volume));
        }
        for k in ["initContainers", "containers"] {
            for c in spec
                .get_mut(k)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let mounts = c
                    .as_object_mut()
                    .map(|c| c.entry("volumeMounts").or_insert_with(|| json!([])));
                if let Some(Value::Array(m)) = mounts {
                    m.push(json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH}));
                }
            }
        }
        Ok(())
    }
}
