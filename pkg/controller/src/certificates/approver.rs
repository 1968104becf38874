//! The CSR approving controller (upstream `pkg/controller/certificates/approver`):
//! kubelet client requests (`kube-apiserver-client-kubelet` signer, a node subject, no
//! names) are approved when the requester may create
//! `certificatesigningrequests/selfnodeclient` (renewing its own identity) or
//! `certificatesigningrequests/nodeclient` (bootstrapping a node), as a
//! SubjectAccessReview says. Anything else is left to an administrator.

use super::authority::parse_request;
use super::{KUBELET_CLIENT_SIGNER, condition, request_pem, validate_kubelet_client};
use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use std::sync::Arc;

pub struct Approver {
    client: kube::Client,
    csrs: Arc<Informer<CertificateSigningRequest>>,
    queue: Arc<Queue>,
}

impl Approver {
    pub fn new(client: kube::Client, csrs: Arc<Informer<CertificateSigningRequest>>) -> Arc<Self> {
        let queue = Queue::named("certificate");
        let q = queue.clone();
        csrs.add_handler(move |csr, deleted| {
            if !deleted {
                q.add(key(csr));
            }
        });
        Arc::new(Approver {
            client,
            csrs,
            queue,
        })
    }

    /// Whether the CSR's requester may create `certificatesigningrequests/<sub>`.
    async fn authorized(&self, csr: &CertificateSigningRequest, sub: &str) -> Result<bool, String> {
        let spec = &csr.spec;
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: spec.username.clone(),
                uid: spec.uid.clone(),
                groups: spec.groups.clone(),
                extra: spec.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some("certificates.k8s.io".into()),
                    resource: Some("certificatesigningrequests".into()),
                    subresource: Some(sub.into()),
                    verb: Some("create".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let out = api
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out.status.is_some_and(|s| s.allowed))
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let Some(csr) = self.csrs.store.get(name) else {
            return Ok(());
        };
        if csr.spec.signer_name != KUBELET_CLIENT_SIGNER
            || condition(&csr, "Approved").is_some()
            || condition(&csr, "Denied").is_some()
        {
            return Ok(());
        }
        let usages = csr.spec.usages.clone().unwrap_or_default();
        let Ok(req) = parse_request(&request_pem(&csr)) else {
            return Ok(());
        };
        if validate_kubelet_client(&req, &usages).is_err() {
            return Ok(());
        }
        let own = csr.spec.username.as_deref() == Some(req.common_name.as_str());
        let message = if own && self.authorized(&csr, "selfnodeclient").await? {
            "Auto approving self kubelet client certificate after SubjectAccessReview."
        } else if self.authorized(&csr, "nodeclient").await? {
            "Auto approving kubelet client certificate after SubjectAccessReview."
        } else {
            return Ok(());
        };
        let mut next = csr.as_ref().clone();
        next.metadata.managed_fields = None;
        let now = Time(jiff::Timestamp::now());
        next.status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new)
            .push(CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("AutoApproved".into()),
                message: Some(message.into()),
                last_update_time: Some(now.clone()),
                last_transition_time: Some(now),
            });
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        match api
            .replace_subresource("approval", name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for Approver {
    type Error = String;

    fn name(&self) -> &str {
        "csrapproving"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.csrs.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        Approver::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, csr};

    /// One sync of a CSR: a well-formed kubelet client request is approved after the
    /// SubjectAccessReview; other signers and malformed subjects are left alone.
    #[tokio::test]
    async fn sync_approves_kubelet_client_requests() {
        let client = ["digital signature", "client auth"];
        // (case, signer, common name, organizations, want approved)
        let cases: [(&str, &str, &str, &[&str], bool); 3] = [
            (
                "kubelet",
                KUBELET_CLIENT_SIGNER,
                "system:node:n1",
                &["system:nodes"],
                true,
            ),
            (
                "other-signer",
                super::super::CLIENT_SIGNER,
                "system:node:n1",
                &["system:nodes"],
                false,
            ),
            (
                "not-a-node",
                KUBELET_CLIENT_SIGNER,
                "alice",
                &["system:nodes"],
                false,
            ),
        ];
        for (name, signer, cn, orgs, want) in cases {
            let env = Env::new(&format!("approve-{name}")).await;
            let csrs = env.cluster_informer::<CertificateSigningRequest>();
            let c = Approver::new(env.client.clone(), csrs.clone());
            env.start().await;
            let csr_name = env.ns.clone();
            let created: CertificateSigningRequest = env
                .create_cluster(csr(&csr_name, signer, cn, orgs, &client))
                .await;
            env.cached(&csrs, &[&created]).await;
            env.sync(c.as_ref(), &csr_name).await;

            let got = env
                .cluster_api::<CertificateSigningRequest>()
                .get(&csr_name)
                .await
                .unwrap();
            let approved = condition(&got, "Approved");
            assert_eq!(approved.is_some(), want, "{name}");
            if let Some(c) = approved {
                assert_eq!(c.reason.as_deref(), Some("AutoApproved"), "{name}");
            }
        }
    }
}
