//! The service-account token controller (upstream `serviceaccount/tokens_controller.go`):
//! a `kubernetes.io/service-account-token` Secret naming a ServiceAccount
//! (`kubernetes.io/service-account.name`) gets a long-lived token signed with
//! `--service-account-private-key-file`, the cluster CA (`ca.crt`, from `--root-ca-file`)
//! and its `namespace`; a Secret whose ServiceAccount is gone (or was replaced, by uid)
//! is deleted, as are the token Secrets of a deleted ServiceAccount.

use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use serviceaccount::jwt::Signer;
use serviceaccount::{LEGACY_ISSUER, username};
use std::sync::Arc;

pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

pub struct TokensController {
    client: kube::Client,
    accounts: Arc<Informer<ServiceAccount>>,
    secrets: Arc<Informer<Secret>>,
    queue: Arc<Queue>,
    signer: Signer,
    root_ca: Option<String>,
}

fn annotation<'a>(s: &'a Secret, k: &str) -> Option<&'a str> {
    s.metadata.annotations.as_ref()?.get(k).map(String::as_str)
}

impl TokensController {
    pub fn new(
        client: kube::Client,
        accounts: Arc<Informer<ServiceAccount>>,
        secrets: Arc<Informer<Secret>>,
        signer: Signer,
        root_ca: Option<String>,
    ) -> Arc<Self> {
        let queue = Queue::named("serviceaccount_tokens_service");
        let q = queue.clone();
        secrets.add_handler(move |s, deleted| {
            if !deleted && s.type_.as_deref() == Some(SECRET_TYPE) {
                q.add(format!("secret/{}", key(s)));
            }
        });
        let q = queue.clone();
        accounts.add_handler(move |sa, deleted| {
            if deleted {
                q.add(format!("account/{}", key(sa)));
            }
        });
        Arc::new(TokensController {
            client,
            accounts,
            secrets,
            queue,
            signer,
            root_ca,
        })
    }

    async fn delete(&self, s: &Secret) -> Result<(), String> {
        let api: Api<Secret> = Api::namespaced(
            self.client.clone(),
            s.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: s.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(s.metadata.name.as_deref().unwrap_or_default(), &dp)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The token Secrets of a deleted ServiceAccount go with it.
    async fn sync_deleted_account(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        if self
            .accounts
            .store
            .state()
            .iter()
            .any(|a| key(a.as_ref()) == k)
        {
            return Ok(());
        }
        for s in self.secrets.store.state() {
            if s.metadata.namespace.as_deref() == Some(ns)
                && s.type_.as_deref() == Some(SECRET_TYPE)
                && annotation(&s, NAME_ANNOTATION) == Some(name)
            {
                self.delete(&s).await?;
            }
        }
        Ok(())
    }

    async fn sync_secret(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(secret) = self.secrets.store.get(k) else {
            return Ok(());
        };
        if secret.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(sa_name) = annotation(&secret, NAME_ANNOTATION).map(String::from) else {
            return Ok(());
        };
        // The account must exist, and be the one the Secret was made for.
        let account = match self.accounts.store.get_in(ns, &sa_name) {
            Some(a) => Some(a),
            // The cache may lag behind a just-created account.
            None => Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
                .get_opt(&sa_name)
                .await
                .map_err(|e| e.to_string())?
                .map(Arc::new),
        };
        let want_uid = annotation(&secret, UID_ANNOTATION).map(String::from);
        let Some(account) = account.filter(|a| {
            want_uid
                .as_deref()
                .is_none_or(|u| a.metadata.uid.as_deref() == Some(u))
        }) else {
            return self.delete(&secret).await;
        };
        let sa_uid = account.metadata.uid.clone().unwrap_or_default();
        let data = secret.data.clone().unwrap_or_default();
        let needs = |k: &str| data.get(k).is_none_or(|v| v.0.is_empty());
        let ca_missing = self.root_ca.is_some() && needs("ca.crt");
        if !needs("token") && !needs("namespace") && !ca_missing && want_uid.is_some() {
            return Ok(());
        }
        let mut next = secret.as_ref().clone();
        next.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(UID_ANNOTATION.into(), sa_uid.clone());
        let d = next.data.get_or_insert_with(Default::default);
        if needs("token") {
            let claims = serde_json::json!({
                "iss": LEGACY_ISSUER,
                "kubernetes.io/serviceaccount/namespace": ns,
                "kubernetes.io/serviceaccount/secret.name": name,
                "kubernetes.io/serviceaccount/service-account.name": sa_name,
                "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
                "sub": username(ns, &sa_name),
            });
            let token = self.signer.sign(&claims)?;
            d.insert("token".into(), ByteString(token.into_bytes()));
        }
        d.insert("namespace".into(), ByteString(ns.as_bytes().to_vec()));
        if let Some(ca) = &self.root_ca {
            d.insert("ca.crt".into(), ByteString(ca.as_bytes().to_vec()));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        match api.replace(name, &PostParams::default(), &next).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for TokensController {
    type Error = String;

    fn name(&self) -> &str {
        "serviceaccount-token"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.accounts.clone(), self.secrets.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        match key.split_once('/') {
            Some(("secret", rest)) => self.sync_secret(rest).await,
            Some(("account", rest)) => self.sync_deleted_account(rest).await,
            _ => Ok(()),
        }
        .map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a service-account token Secret: filled with a token the signer's key
    /// verifies, the namespace and the CA; deleted when its account does not exist.
    #[tokio::test]
    async fn sync_fills_token_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate(&dir.path().join("sa.key")).unwrap();
        let public = signer.public_key();
        // (case, account exists, want the secret kept)
        for (name, account, want_kept) in [("filled", true, true), ("orphan", false, false)] {
            let env = Env::new(&format!("sat-{name}")).await;
            let (accounts, secrets) = (env.informer::<ServiceAccount>(), env.informer::<Secret>());
            let c = TokensController::new(
                env.client.clone(),
                accounts.clone(),
                secrets.clone(),
                Signer::load(&dir.path().join("sa.key")).unwrap(),
                Some("CA PEM".into()),
            );
            env.start().await;
            if account {
                let sa: ServiceAccount = env.create(json!({"metadata": {"name": "robot"}})).await;
                env.cached(&accounts, &[&sa]).await;
            }
            let secret: Secret = env
                .create(json!({"metadata": {"name": "robot-token",
                    "annotations": {NAME_ANNOTATION: "robot"}}, "type": SECRET_TYPE}))
                .await;
            env.cached(&secrets, &[&secret]).await;
            accounts.synced().await;
            env.sync(c.as_ref(), &format!("secret/{}", env.key("robot-token")))
                .await;

            let got = env.api::<Secret>().get_opt("robot-token").await.unwrap();
            assert_eq!(got.is_some(), want_kept, "{name}");
            let Some(got) = got else { continue };
            let data = got.data.unwrap_or_default();
            let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
            assert_eq!(text("namespace"), env.ns);
            assert_eq!(text("ca.crt"), "CA PEM");
            let (_, claims) =
                serviceaccount::jwt::verify(&text("token"), std::slice::from_ref(&public))
                    .unwrap_or_else(|e| panic!("{name}: token does not verify: {e:?}"));
            assert_eq!(
                claims["sub"],
                format!("system:serviceaccount:{}:robot", env.ns),
                "{name}"
            );
        }
    }
}
