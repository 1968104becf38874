//! Requesting the kubelet's client certificate through the certificates API (upstream
//! `pkg/kubelet/certificate/bootstrap.requestNodeCertificate` and client-go's
//! `util/certificate/csr`): a CSR for `system:node:<name>` in `system:nodes`, signer
//! `kubernetes.io/kube-apiserver-client-kubelet`, named from a digest of its key, subject
//! and usages so that a retry finds its own request; then the wait for the issued
//! certificate, or the denial.

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use rcgen::PublicKeyData;
use std::time::{Duration, Instant};

pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The usages a key of this kind asks for (RSA keys also encipher, as upstream).
fn usages(key: &rcgen::KeyPair) -> Vec<String> {
    let mut u = vec!["digital signature".to_string(), "client auth".to_string()];
    if !key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256)
        && !key.is_compatible(&rcgen::PKCS_ECDSA_P384_SHA384)
    {
        u.push("key encipherment".into());
    }
    u
}

/// Upstream's `digestedName`: `node-csr-` and the unpadded base64url SHA-512/256 of the
/// public key, common name, organizations and usages, each base64url-encoded and
/// followed by `|`.
pub fn digested_name(spki_der: &[u8], cn: &str, orgs: &[&str], usages: &[String]) -> String {
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA512_256);
    let mut write = |b: &[u8]| {
        ctx.update(enc(b).as_bytes());
        ctx.update(b"|");
    };
    write(spki_der);
    write(cn.as_bytes());
    for o in orgs {
        write(o.as_bytes());
    }
    for u in usages {
        write(u.as_bytes());
    }
    format!("node-csr-{}", enc(ctx.finish().as_ref()))
}

/// A fresh ECDSA P-256 key, PEM-encoded (upstream's kubelet generates the same kind).
pub fn generate_key() -> Result<String, String> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map(|k| k.serialize_pem())
        .map_err(|e| format!("generating a key: {e}"))
}

/// What to ask for: subject, names, signer, usages, and the CSR's name (None: the
/// apiserver generates one from `csr-`, as upstream's serving requests).
pub struct Request {
    pub name: Option<String>,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub signer: String,
    pub usages: Vec<String>,
}

/// Requests a client certificate for `node` signed for `key_pem` and waits for it (up to
/// `timeout`); the issued certificate chain as PEM.
pub async fn request_node_certificate(
    client: &kube::Client,
    key_pem: &str,
    node: &str,
    timeout: Duration,
) -> Result<String, String> {
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("the private key: {e}"))?;
    let cn = format!("system:node:{node}");
    let usages = usages(&key);
    let name = digested_name(
        &key.subject_public_key_info(),
        &cn,
        &["system:nodes"],
        &usages,
    );
    let req = Request {
        name: Some(name),
        common_name: cn,
        organizations: vec!["system:nodes".into()],
        dns_names: vec![],
        ips: vec![],
        signer: KUBELET_CLIENT_SIGNER.into(),
        usages,
    };
    request_certificate(client, key_pem, &req, timeout).await
}

/// Sends `req` as a CertificateSigningRequest for `key_pem` and waits up to `timeout`
/// for the certificate (client-go's `RequestCertificate` + `WaitForCertificate`).
pub async fn request_certificate(
    client: &kube::Client,
    key_pem: &str,
    req: &Request,
    timeout: Duration,
) -> Result<String, String> {
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("the private key: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for o in &req.organizations {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, o.clone());
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, req.common_name.clone());
    for d in &req.dns_names {
        params.subject_alt_names.push(rcgen::SanType::DnsName(
            d.clone()
                .try_into()
                .map_err(|e| format!("DNS name {d:?}: {e}"))?,
        ));
    }
    for ip in &req.ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(*ip));
    }
    let request = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| format!("creating the certificate request: {e}"))?;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: req.name.clone(),
            generate_name: req.name.is_none().then(|| "csr-".to_string()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: req.signer.clone(),
            usages: Some(req.usages.clone()),
            ..Default::default()
        },
        status: None,
    };
    let mut name = req.name.clone().unwrap_or_default();
    let uid = match api.create(&PostParams::default(), &csr).await {
        Ok(created) => {
            name = created.metadata.name.clone().unwrap_or_default();
            created.metadata.uid
        }
        // Our own earlier request (same key, same digest): wait for it instead.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(&name).await.map_err(|e| e.to_string())?;
            if existing.spec.signer_name != req.signer {
                return Err(format!(
                    "retrieved csr {name:?} is not compatible: signer {:?}",
                    existing.spec.signer_name
                ));
            }
            existing.metadata.uid
        }
        Err(e) => return Err(format!("cannot create certificate signing request: {e}")),
    };
    tracing::info!(csr = name, "waiting for client certificate to be issued");
    let deadline = Instant::now() + timeout;
    loop {
        match api.get(&name).await {
            Ok(csr) if csr.metadata.uid != uid => {
                return Err(format!(
                    "csr {name:?} was deleted and recreated while waiting for it"
                ));
            }
            Ok(csr) => {
                let status = csr.status.unwrap_or_default();
                for c in status.conditions.iter().flatten() {
                    let (reason, message) = (
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    );
                    match c.type_.as_str() {
                        "Denied" => {
                            return Err(format!(
                                "certificate signing request is denied, reason: {reason}, message: {message}"
                            ));
                        }
                        "Failed" => {
                            return Err(format!(
                                "certificate signing request failed, reason: {reason}, message: {message}"
                            ));
                        }
                        _ => {}
                    }
                }
                let approved = status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Approved" && c.status == "True");
                if let Some(cert) = status.certificate.filter(|c| approved && !c.0.is_empty()) {
                    return String::from_utf8(cert.0)
                        .map_err(|_| "the issued certificate is not PEM".to_string());
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(format!("csr {name:?} was deleted while waiting for it"));
            }
            Err(e) => {
                tracing::warn!(csr = name, error = %e, "reading the certificate signing request")
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for the certificate of csr {name:?} to be issued"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_per_key_and_differ_by_subject() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let u = usages(&key);
        assert_eq!(u, ["digital signature", "client auth"]);
        let a = digested_name(
            &key.subject_public_key_info(),
            "system:node:a",
            &["system:nodes"],
            &u,
        );
        let b = digested_name(
            &key.subject_public_key_info(),
            "system:node:a",
            &["system:nodes"],
            &u,
        );
        let c = digested_name(
            &key.subject_public_key_info(),
            "system:node:b",
            &["system:nodes"],
            &u,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("node-csr-"));
        // SHA-512/256 is 32 bytes: 43 unpadded base64url characters.
        assert_eq!(a.len(), "node-csr-".len() + 43);
    }
}
