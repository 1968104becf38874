//! The ServiceAccount controller (upstream `pkg/controller/serviceaccount`): every active
//! namespace has a `default` ServiceAccount; deleting it brings it back.

pub mod tokens;

use crate::informer::{Informer, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::sync::Arc;

pub struct ServiceAccountsController {
    client: kube::Client,
    namespaces: Arc<Informer<Namespace>>,
    accounts: Arc<Informer<ServiceAccount>>,
    queue: Arc<Queue>,
    /// The accounts every namespace gets (`default`).
    names: Vec<String>,
}

pub fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

impl ServiceAccountsController {
    pub fn new(
        client: kube::Client,
        namespaces: Arc<Informer<Namespace>>,
        accounts: Arc<Informer<ServiceAccount>>,
    ) -> Arc<Self> {
        let queue = Queue::named("serviceaccount");
        let q = queue.clone();
        namespaces.add_handler(move |ns, deleted| {
            if !deleted {
                q.add(ns.metadata.name.clone().unwrap_or_default());
            }
        });
        let q = queue.clone();
        accounts.add_handler(move |sa, deleted| {
            if deleted {
                q.add(sa.metadata.namespace.clone().unwrap_or_default());
            }
        });
        Arc::new(ServiceAccountsController {
            client,
            namespaces,
            accounts,
            queue,
            names: vec!["default".into()],
        })
    }

    async fn sync(&self, ns: &str) -> Result<(), String> {
        let (_, name) = split(ns);
        let Some(namespace) = self.namespaces.store.get(name) else {
            return Ok(());
        };
        if !active(&namespace) {
            return Ok(());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        for sa in &self.names {
            let exists = self.accounts.store.state().iter().any(|a| {
                a.metadata.namespace.as_deref() == Some(name)
                    && a.metadata.name.as_deref() == Some(sa)
            });
            if exists {
                continue;
            }
            let account = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(sa.clone()),
                    namespace: Some(name.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &account).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                // The namespace is being deleted: nothing to do.
                Err(kube::Error::Api(e))
                    if e.code == 403 && e.message.contains("being terminated") => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

impl Reconciler for ServiceAccountsController {
    type Error = String;

    fn name(&self) -> &str {
        "serviceaccount"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.namespaces.clone(), self.accounts.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        ServiceAccountsController::sync(self, key)
            .await
            .map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a namespace: its `default` ServiceAccount created when missing,
    /// left as it is when there, none in a terminating namespace.
    #[tokio::test]
    async fn sync_ensures_the_default_account() {
        // (case, account already there, namespace terminating, want the account)
        let cases = [
            ("missing", false, false, true),
            ("present", true, false, true),
            ("terminating", false, true, false),
        ];
        for (name, present, terminating, want) in cases {
            let env = Env::new(&format!("sa-{name}")).await;
            let (namespaces, accounts) = (
                env.cluster_informer::<Namespace>(),
                env.informer::<ServiceAccount>(),
            );
            let c = ServiceAccountsController::new(
                env.client.clone(),
                namespaces.clone(),
                accounts.clone(),
            );
            env.start().await;
            if present {
                let sa: ServiceAccount = env
                    .create(json!({"metadata": {"name": "default", "labels": {"kept": "yes"}}}))
                    .await;
                env.cached(&accounts, &[&sa]).await;
            }
            if terminating {
                // Held open by a finalized object, so that it stays terminating.
                env.create::<k8s_openapi::api::core::v1::ConfigMap>(
                    json!({"metadata": {"name": "hold", "finalizers": ["test.k8s.io/hold"]}}),
                )
                .await;
                env.cluster_api::<Namespace>()
                    .delete(&env.ns, &Default::default())
                    .await
                    .unwrap();
            }
            env.cached(&namespaces, &[&env.namespace().await]).await;
            accounts.synced().await;
            env.sync(c.as_ref(), &env.ns).await;

            let got = env
                .api::<ServiceAccount>()
                .get_opt("default")
                .await
                .unwrap();
            assert_eq!(got.is_some(), want, "{name}");
            if present {
                let labels = got.unwrap().metadata.labels.unwrap_or_default();
                assert_eq!(
                    labels.get("kept").map(String::as_str),
                    Some("yes"),
                    "{name}: replaced"
                );
            }
        }
    }
}
