//! The bootstrap signer (upstream `bootstrap/bootstrapsigner.go`): for every unexpired
//! bootstrap token allowed to sign (`usage-bootstrap-signing: "true"`), the
//! `kube-public/cluster-info` ConfigMap carries `jws-kubeconfig-<token-id>`, a detached
//! HS256 JWS of its `kubeconfig` keyed by the token secret, so that a joining node can
//! check the cluster's CA with nothing but its token. Signatures of tokens that went
//! away are removed.

use super::{expired, field, token};
use crate::informer::Informer;
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CONFIG_MAP: &str = "cluster-info";
pub const NAMESPACE: &str = "kube-public";
pub const JWS_PREFIX: &str = "jws-kubeconfig-";
const KEY: &str = "cluster-info";

pub struct BootstrapSigner {
    client: kube::Client,
    config_maps: Arc<Informer<ConfigMap>>,
    secrets: Arc<Informer<Secret>>,
    queue: Arc<Queue>,
}

use client_go::bootstrap_jws::detached_jws;

impl BootstrapSigner {
    /// `config_maps` watches `kube-public`, `secrets` `kube-system`.
    pub fn new(
        client: kube::Client,
        config_maps: Arc<Informer<ConfigMap>>,
        secrets: Arc<Informer<Secret>>,
    ) -> Arc<Self> {
        let queue = Queue::named("bootstrap_signer_queue");
        let q = queue.clone();
        config_maps.add_handler(move |cm, _| {
            if cm.metadata.name.as_deref() == Some(CONFIG_MAP) {
                q.add(KEY.into());
            }
        });
        let q = queue.clone();
        secrets.add_handler(move |s, _| {
            if s.type_.as_deref() == Some(super::SECRET_TYPE) {
                q.add(KEY.into());
            }
        });
        Arc::new(BootstrapSigner {
            client,
            config_maps,
            secrets,
            queue,
        })
    }

    async fn sync(&self) -> Result<(), String> {
        let Some(cm) = self.config_maps.store.get_in("kube-public", CONFIG_MAP) else {
            return Ok(());
        };
        let data = cm.data.clone().unwrap_or_default();
        let Some(kubeconfig) = data.get("kubeconfig") else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let mut want: BTreeMap<String, String> = data
            .iter()
            .filter(|(k, _)| !k.starts_with(JWS_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for s in self.secrets.store.state() {
            let Some((id, secret)) = token(&s) else {
                continue;
            };
            if expired(&s, now) || field(&s, "usage-bootstrap-signing").as_deref() != Some("true") {
                continue;
            }
            want.insert(
                format!("{JWS_PREFIX}{id}"),
                detached_jws(kubeconfig, &id, &secret),
            );
        }
        if want == data {
            return Ok(());
        }
        let mut next = cm.as_ref().clone();
        next.data = Some(want);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), NAMESPACE);
        match api.replace(CONFIG_MAP, &PostParams::default(), &next).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for BootstrapSigner {
    type Error = String;

    fn name(&self) -> &str {
        "bootstrap-signer"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.config_maps.clone(), self.secrets.clone()]
    }

    /// One key: the cluster-info ConfigMap.
    async fn sync(&self, _key: &str) -> Result<Action, String> {
        BootstrapSigner::sync(self).await.map(Action::from)
    }

    fn on_synced(self: &Arc<Self>) {
        self.queue.add(KEY.into());
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::bootstrap::{SECRET_PREFIX, SECRET_TYPE};
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of `cluster-info`: a JWS signature for each signing token, none for
    /// tokens not meant for signing or expired.
    #[tokio::test]
    async fn sync_signs_cluster_info() {
        let env = Env::new("bootstrapsigner").await;
        let config_maps = env.informers.namespaced::<ConfigMap>(NAMESPACE);
        let secrets = env.informers.namespaced::<Secret>("kube-system");
        let c = BootstrapSigner::new(env.client.clone(), config_maps.clone(), secrets.clone());
        env.start().await;
        let secrets_api: Api<Secret> = Api::namespaced(env.client.clone(), "kube-system");
        // (token id, usage-bootstrap-signing, expired, want signed)
        let tokens = [
            ("sig001", "true", false, true),
            ("nos001", "false", false, false),
            ("exs001", "true", true, false),
        ];
        let mut created = Vec::new();
        for (id, signing, expired, _) in tokens {
            let mut data = json!({"token-id": id, "token-secret": "0123456789abcdef", "usage-bootstrap-signing": signing});
            if expired {
                let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
                data["expiration"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
            let s: Secret = serde_json::from_value(json!({
                "metadata": {"name": format!("{SECRET_PREFIX}{id}"), "namespace": "kube-system"},
                "type": SECRET_TYPE, "stringData": data}))
            .unwrap();
            created.push(secrets_api.create(&Default::default(), &s).await.unwrap());
        }
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), NAMESPACE);
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
            "data": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}}))
        .unwrap();
        let cm = cms.create(&Default::default(), &cm).await.unwrap();
        env.cached(&config_maps, &[&cm]).await;
        env.cached(&secrets, &created.iter().collect::<Vec<_>>())
            .await;
        env.sync(c.as_ref(), KEY).await;

        let data = cms.get(CONFIG_MAP).await.unwrap().data.unwrap_or_default();
        for (id, _, _, want) in tokens {
            let sig = data.get(&format!("{JWS_PREFIX}{id}"));
            assert_eq!(sig.is_some(), want, "{id}: {data:?}");
            if let Some(sig) = sig {
                assert_eq!(
                    sig,
                    &detached_jws("apiVersion: v1\nkind: Config\n", id, "0123456789abcdef")
                );
            }
        }
    }
}
