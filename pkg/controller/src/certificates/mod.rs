//! Certificate controllers (upstream `pkg/controller/certificates`).

pub mod approver;
pub mod authority;
pub mod cleaner;
pub mod rootcacertpublisher;
pub mod signer;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};

/// Upstream's built-in signer for kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// The CSR's condition of `type_` set to True, if any.
pub fn condition<'a>(
    csr: &'a CertificateSigningRequest,
    type_: &str,
) -> Option<&'a CertificateSigningRequestCondition> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// The request PEM of a CSR.
pub fn request_pem(csr: &CertificateSigningRequest) -> String {
    String::from_utf8_lossy(&csr.spec.request.0).into_owned()
}

/// Upstream's `ValidateKubeletClientCSR` / `ValidateKubeletServingCSR` subject checks: a
/// node identity, `system:node:<name>` in `system:nodes`.
pub fn validate_node_subject(req: &authority::Request) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with 'system:node:'".into());
    }
    Ok(())
}

/// The usages a kubelet certificate may ask for: exactly `main` and digital signature,
/// key encipherment optional (RSA keys need it).
pub fn validate_kubelet_usages(usages: &[String], main: &str) -> Result<(), String> {
    let mut got: Vec<&str> = usages.iter().map(String::as_str).collect();
    got.sort_unstable();
    got.dedup();
    let mut with = vec!["digital signature", "key encipherment", main];
    with.sort_unstable();
    let mut without = vec!["digital signature", main];
    without.sort_unstable();
    if got == with || got == without {
        Ok(())
    } else {
        // Upstream prints the sorted set with key encipherment.
        Err(format!("usages did not match [{}]", with.join(" ")))
    }
}

/// A kubelet client request (`ValidateKubeletClientCSR`): node subject, no SANs.
pub fn validate_kubelet_client(req: &authority::Request, usages: &[String]) -> Result<(), String> {
    validate_node_subject(req)?;
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.emails.is_empty() {
        return Err("email subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    validate_kubelet_usages(usages, "client auth")
}

/// A kubelet serving request (`ValidateKubeletServingCSR`): node subject, DNS or IP
/// names only.
pub fn validate_kubelet_serving(req: &authority::Request, usages: &[String]) -> Result<(), String> {
    validate_kubelet_usages(usages, "server auth")?;
    validate_node_subject(req)?;
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.emails.is_empty() {
        return Err("email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    Ok(())
}
