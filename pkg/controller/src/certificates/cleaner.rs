//! The CSR cleaner (upstream `pkg/controller/certificates/cleaner`), hourly: requests
//! pending for 24 hours, approved, denied or failed for an hour, and issued ones whose
//! certificate has expired are deleted.

use super::{condition, is_issued};
use crate::informer::Informer;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, DeleteParams};
use std::sync::Arc;
use std::time::Duration;

const PENDING_EXPIRATION: i64 = 24 * 3600;
const DECIDED_EXPIRATION: i64 = 3600;

pub struct Cleaner {
    client: kube::Client,
    csrs: Arc<Informer<CertificateSigningRequest>>,
    period: Duration,
}

/// Whether the CSR has outlived what upstream keeps.
fn expired(csr: &CertificateSigningRequest, now: jiff::Timestamp) -> bool {
    let older_than = |t: Option<jiff::Timestamp>, secs: i64| {
        t.is_some_and(|t| now.duration_since(t).as_secs() > secs)
    };
    if is_issued(csr) {
        let pem = csr.status.as_ref().and_then(|s| s.certificate.as_ref());
        return pem.is_some_and(|p| {
            x509_parser::pem::parse_x509_pem(&p.0)
                .ok()
                .and_then(|(_, block)| {
                    block
                        .parse_x509()
                        .ok()
                        .map(|c| c.validity().not_after.timestamp())
                })
                .is_some_and(|end| end < now.as_second())
        });
    }
    for t in ["Approved", "Denied", "Failed"] {
        if let Some(c) = condition(csr, t) {
            let at = c
                .last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
                .map(|t| t.0);
            return older_than(at, DECIDED_EXPIRATION);
        }
    }
    let created = csr.metadata.creation_timestamp.as_ref().map(|t| t.0);
    older_than(created, PENDING_EXPIRATION)
}

impl Cleaner {
    pub fn new(
        client: kube::Client,
        csrs: Arc<Informer<CertificateSigningRequest>>,
        period: Duration,
    ) -> Arc<Self> {
        Arc::new(Cleaner {
            client,
            csrs,
            period,
        })
    }

    pub async fn run(self: Arc<Self>) {
        self.csrs.synced().await;
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        loop {
            let now = jiff::Timestamp::now();
            for csr in self.csrs.store.state() {
                if expired(&csr, now) {
                    let name = csr.metadata.name.as_deref().unwrap_or_default();
                    tracing::info!(
                        csr = name,
                        "deleting an expired certificate signing request"
                    );
                    let _ = api.delete(name, &DeleteParams::default()).await;
                }
            }
            tokio::time::sleep(self.period).await;
        }
    }
}
