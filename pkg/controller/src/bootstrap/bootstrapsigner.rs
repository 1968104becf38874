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
