//! The root CA publisher (upstream `certificates/rootcacertpublisher`): every active
//! namespace has the `kube-root-ca.crt` ConfigMap holding the cluster's CA bundle
//! (`ca.crt`), put back when deleted or changed.

use crate::informer::Informer;
use crate::reconciler::{Action, Reconciler};
use crate::serviceaccount::active;
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const NAME: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub struct Publisher {
    client: kube::Client,
    namespaces: Arc<Informer<Namespace>>,
    config_maps: Arc<Informer<ConfigMap>>,
    queue: Arc<Queue>,
    ca: String,
}

impl Publisher {
    pub fn new(
        client: kube::Client,
        namespaces: Arc<Informer<Namespace>>,
        config_maps: Arc<Informer<ConfigMap>>,
        ca: String,
    ) -> Arc<Self> {
        let queue = Queue::named("root_ca_cert_publisher");
        let q = queue.clone();
        namespaces.add_handler(move |ns, deleted| {
            if !deleted {
                q.add(ns.metadata.name.clone().unwrap_or_default());
            }
        });
        let q = queue.clone();
        config_maps.add_handler(move |cm, _| {
            if cm.metadata.name.as_deref() == Some(NAME) {
                q.add(cm.metadata.namespace.clone().unwrap_or_default());
            }
        });
        Arc::new(Publisher {
            client,
            namespaces,
            config_maps,
            queue,
            ca,
        })
    }

    async fn sync(&self, ns: &str) -> Result<(), String> {
        let Some(namespace) = self.namespaces.store.get(ns) else {
            return Ok(());
        };
        if !active(&namespace) {
            return Ok(());
        }
        let data = BTreeMap::from([("ca.crt".to_string(), self.ca.clone())]);
        let current = self.config_maps.store.get_in(ns, NAME);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let desired = |rv: Option<String>| ConfigMap {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(ns.into()),
                annotations: Some(BTreeMap::from([(
                    "kubernetes.io/description".to_string(),
                    DESCRIPTION.to_string(),
                )])),
                resource_version: rv,
                ..Default::default()
            },
            data: Some(data.clone()),
            ..Default::default()
        };
        let result = match current {
            None => api
                .create(&PostParams::default(), &desired(None))
                .await
                .map(|_| ()),
            Some(c) if c.data.as_ref() != Some(&data) => {
                let mut next = (*c).clone();
                next.data = Some(data.clone());
                api.replace(NAME, &PostParams::default(), &next)
                    .await
                    .map(|_| ())
            }
            Some(_) => Ok(()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(kube::Error::Api(e))
                if e.code == 409 || (e.code == 403 && e.message.contains("being terminated")) =>
            {
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for Publisher {
    type Error = String;

    fn name(&self) -> &str {
        "root-ca-cert-publisher"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.namespaces.clone(), self.config_maps.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        Publisher::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a namespace: `kube-root-ca.crt` created, or corrected when its
    /// `ca.crt` differs.
    #[tokio::test]
    async fn sync_publishes_the_root_ca() {
        for (name, existing) in [
            ("missing", None),
            ("stale", Some("OLD CA")),
            ("current", Some("CA PEM")),
        ] {
            let env = Env::new(&format!("rootca-{name}")).await;
            let (namespaces, config_maps) = (
                env.cluster_informer::<Namespace>(),
                env.informer::<ConfigMap>(),
            );
            let c = Publisher::new(
                env.client.clone(),
                namespaces.clone(),
                config_maps.clone(),
                "CA PEM".into(),
            );
            env.start().await;
            if let Some(ca) = existing {
                let cm: ConfigMap = env
                    .create(json!({"metadata": {"name": NAME}, "data": {"ca.crt": ca}}))
                    .await;
                env.cached(&config_maps, &[&cm]).await;
            }
            env.cached(&namespaces, &[&env.namespace().await]).await;
            config_maps.synced().await;
            env.sync(c.as_ref(), &env.ns).await;

            let cm = env.api::<ConfigMap>().get(NAME).await.unwrap();
            assert_eq!(
                cm.data
                    .unwrap_or_default()
                    .get("ca.crt")
                    .map(String::as_str),
                Some("CA PEM"),
                "{name}"
            );
        }
    }
}
