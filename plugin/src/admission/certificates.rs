//! The CertificateSigningRequest plugins (upstream `plugin/pkg/admission/certificates`):
//! CertificateApproval and CertificateSigning ask the authorizer whether the requester may
//! `approve` / `sign` for the CSR's signer (resource `signers` in `certificates.k8s.io`,
//! named by the signer or by its domain wildcard `<domain>/*`); CertificateSubjectRestriction
//! refuses `kubernetes.io/kube-apiserver-client` requests for the `system:masters` group.

use apimachinery::{GroupResource, StatusError};
use apiserver::admission::{Attributes, Operation, Plugin};
use apiserver::authentication::UserInfo;
use apiserver::authorization;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

const GROUP: &str = "certificates.k8s.io";

fn is_csr(a: &Attributes<'_>, subresource: &str) -> bool {
    a.is(GROUP, "certificatesigningrequests") && a.subresource == subresource
}

fn signer(obj: &Value) -> &str {
    obj["spec"]["signerName"].as_str().unwrap_or_default()
}

fn forbidden(a: &Attributes<'_>, detail: String) -> StatusError {
    StatusError::forbidden(
        &GroupResource::new(GROUP, "certificatesigningrequests"),
        a.name,
        &detail,
    )
}

/// Upstream `certificates.IsAuthorizedForSignerName`: the verb on the signer's name, or on
/// its domain's wildcard.
pub async fn authorized_for_signer(
    authz: &authorization::Chain,
    user: Option<&UserInfo>,
    verb: &str,
    signer: &str,
) -> bool {
    let Some(user) = user else {
        // The apiserver's own writes.
        return true;
    };
    let mut attrs = authorization::Attributes {
        user: user.clone(),
        verb: verb.into(),
        resource_request: true,
        api_group: GROUP.into(),
        resource: "signers".into(),
        name: signer.into(),
        ..Default::default()
    };
    if authz.authorize(&attrs).await.is_ok() {
        return true;
    }
    let Some((domain, _)) = signer.split_once('/') else {
        return false;
    };
    attrs.name = format!("{domain}/*");
    authz.authorize(&attrs).await.is_ok()
}

/// The requester may `verb` for the CSR's signer, or the write is forbidden with
/// upstream's message.
async fn require_signer_verb(
    authz: &authorization::Chain,
    a: &Attributes<'_>,
    csr: &Value,
    verb: &str,
) -> Result<(), StatusError> {
    let name = signer(csr);
    if authorized_for_signer(authz, a.user, verb, name).await {
        return Ok(());
    }
    Err(forbidden(
        a,
        format!("user not permitted to {verb} requests with signerName {name:?}"),
    ))
}

pub struct CertificateApproval {
    pub authorizer: Arc<authorization::Chain>,
}

#[async_trait]
impl Plugin for CertificateApproval {
    fn name(&self) -> &'static str {
        "CertificateApproval"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(csr) = obj.filter(|_| is_csr(a, "approval")) else {
            return Ok(());
        };
        require_signer_verb(&self.authorizer, a, csr, "approve").await
    }
}

pub struct CertificateSigning {
    pub authorizer: Arc<authorization::Chain>,
}

#[async_trait]
impl Plugin for CertificateSigning {
    fn name(&self) -> &'static str {
        "CertificateSigning"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(csr) = obj.filter(|_| is_csr(a, "status") && a.operation == Operation::Update)
        else {
            return Ok(());
        };
        // Only a change of the issued certificate is signing.
        let old = a.old.map(|o| &o["status"]["certificate"]);
        if old == Some(&csr["status"]["certificate"]) {
            return Ok(());
        }
        require_signer_verb(&self.authorizer, a, csr, "sign").await
    }
}

pub struct CertificateSubjectRestriction;

/// The subject organizations of a PEM (base64 in JSON) certificate request; None when it
/// does not parse (validation reports that).
fn requested_organizations(request: &str) -> Option<Vec<String>> {
    use base64::Engine;
    use x509_parser::prelude::FromDer;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .ok()?;
    Some(
        csr.certification_request_info
            .subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(String::from))
            .collect(),
    )
}

#[async_trait]
impl Plugin for CertificateSubjectRestriction {
    fn name(&self) -> &'static str {
        "CertificateSubjectRestriction"
    }

    async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        let Some(csr) = obj.filter(|_| is_csr(a, "") && a.operation == Operation::Create) else {
            return Ok(());
        };
        if signer(csr) != "kubernetes.io/kube-apiserver-client" {
            return Ok(());
        }
        let orgs = requested_organizations(csr["spec"]["request"].as_str().unwrap_or_default())
            .unwrap_or_default();
        if orgs.iter().any(|o| o == "system:masters") {
            return Err(forbidden(
                a,
                "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed".into(),
            ));
        }
        Ok(())
    }
}
