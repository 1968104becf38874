//! The CSR signing controller (upstream `pkg/controller/certificates/signer`): approved
//! requests for the built-in signers (`kube-apiserver-client`,
//! `kube-apiserver-client-kubelet`, `kubelet-serving`) are checked against what each
//! signer may issue and signed by the cluster CA, the certificate written to
//! `status.certificate`; a request a signer refuses gets a `Failed` condition.

use super::authority::{Authority, parse_request};
use super::{
    CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, condition, is_issued,
    request_pem, validate_kubelet_client, validate_kubelet_serving,
};
use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;

/// The shortest lifetime a request may ask for (`expirationSeconds`).
const MIN_DURATION: Duration = Duration::from_secs(600);

pub struct Signer {
    client: kube::Client,
    csrs: Arc<Informer<CertificateSigningRequest>>,
    queue: Arc<Queue>,
    authority: Authority,
    /// `--cluster-signing-duration`: the longest lifetime issued.
    max_duration: Duration,
}

/// What the signer accepts for a client certificate of the apiserver.
fn validate_client(usages: &[String]) -> Result<(), String> {
    match usages.iter().find(|u| {
        !matches!(
            u.as_str(),
            "digital signature" | "key encipherment" | "client auth"
        )
    }) {
        Some(u) => Err(format!("invalid usage for client certificate: {u}")),
        None => Ok(()),
    }
}

impl Signer {
    pub fn new(
        client: kube::Client,
        csrs: Arc<Informer<CertificateSigningRequest>>,
        authority: Authority,
        max_duration: Duration,
    ) -> Arc<Self> {
        let queue = Queue::named("certificate");
        let q = queue.clone();
        csrs.add_handler(move |csr, deleted| {
            if !deleted {
                q.add(key(csr));
            }
        });
        Arc::new(Signer {
            client,
            csrs,
            queue,
            authority,
            max_duration,
        })
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let Some(csr) = self.csrs.store.get(name) else {
            return Ok(());
        };
        let signer = csr.spec.signer_name.as_str();
        if ![CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER].contains(&signer)
            || condition(&csr, "Approved").is_none()
            || condition(&csr, "Failed").is_some()
            || is_issued(&csr)
        {
            return Ok(());
        }
        let usages = csr.spec.usages.clone().unwrap_or_default();
        let checked = parse_request(&request_pem(&csr)).and_then(|req| {
            match signer {
                KUBELET_CLIENT_SIGNER => validate_kubelet_client(&req, &usages),
                KUBELET_SERVING_SIGNER => validate_kubelet_serving(&req, &usages),
                _ => validate_client(&usages),
            }
            .map(|()| req)
        });
        let mut next = csr.as_ref().clone();
        next.metadata.managed_fields = None;
        let status = next.status.get_or_insert_with(Default::default);
        match checked {
            Ok(req) => {
                let wanted = csr
                    .spec
                    .expiration_seconds
                    .map(|s| Duration::from_secs(s.max(0) as u64).max(MIN_DURATION))
                    .unwrap_or(self.max_duration);
                let pem = self
                    .authority
                    .sign(&req, &usages, wanted.min(self.max_duration))?;
                status.certificate = Some(ByteString(pem.into_bytes()));
            }
            Err(e) => {
                let now = Time(jiff::Timestamp::now());
                status.conditions.get_or_insert_with(Vec::new).push(
                    CertificateSigningRequestCondition {
                        type_: "Failed".into(),
                        status: "True".into(),
                        reason: Some("SignerValidationFailure".into()),
                        message: Some(e),
                        last_update_time: Some(now.clone()),
                        last_transition_time: Some(now),
                    },
                );
            }
        }
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        match api
            .replace_status(name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for Signer {
    type Error = String;

    fn name(&self) -> &str {
        "csrsigning"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.csrs.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        Signer::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, csr};
    use serde_json::json;

    fn authority() -> Authority {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test-cluster-ca");
        let cert = params.self_signed(&key).unwrap();
        Authority::load(&cert.pem(), &key.serialize_pem()).unwrap()
    }

    /// One sync of an approved CSR: a certificate for the requested subject, or the
    /// Failed condition when the request does not fit its signer; unapproved ones wait.
    #[tokio::test]
    async fn sync_signs_approved_requests() {
        let usages = ["digital signature", "client auth"];
        // (case, signer, common name, approved, want issued, want failed)
        let cases = [
            ("client", CLIENT_SIGNER, "alice", true, true, false),
            (
                "bad-kubelet-subject",
                KUBELET_CLIENT_SIGNER,
                "alice",
                true,
                false,
                true,
            ),
            ("unapproved", CLIENT_SIGNER, "alice", false, false, false),
        ];
        for (name, signer, cn, approve, want_issued, want_failed) in cases {
            let env = Env::new(&format!("sign-{name}")).await;
            let csrs = env.cluster_informer::<CertificateSigningRequest>();
            let c = Signer::new(
                env.client.clone(),
                csrs.clone(),
                authority(),
                Duration::from_secs(3600),
            );
            env.start().await;
            let csr_name = env.ns.clone();
            let mut created: CertificateSigningRequest = env
                .create_cluster(csr(&csr_name, signer, cn, &["team"], &usages))
                .await;
            if approve {
                let mut approved = created.clone();
                approved.status = Some(serde_json::from_value(json!({"conditions": [
                    {"type": "Approved", "status": "True", "reason": "Test", "message": "approved by the test"}]})).unwrap());
                created = env
                    .cluster_api::<CertificateSigningRequest>()
                    .replace_subresource("approval", &csr_name, &PostParams::default(), &approved)
                    .await
                    .unwrap();
            }
            env.cached(&csrs, &[&created]).await;
            env.sync(c.as_ref(), &csr_name).await;

            let got = env
                .cluster_api::<CertificateSigningRequest>()
                .get(&csr_name)
                .await
                .unwrap();
            assert_eq!(is_issued(&got), want_issued, "{name}");
            assert_eq!(condition(&got, "Failed").is_some(), want_failed, "{name}");
            if want_issued {
                let pem = got.status.unwrap().certificate.unwrap().0;
                let (_, der) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
                let cert = der.parse_x509().unwrap();
                let subject_cn = cert
                    .subject()
                    .iter_common_name()
                    .next()
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(subject_cn, cn, "{name}");
            }
        }
    }
}
