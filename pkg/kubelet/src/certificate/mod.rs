//! The kubelet's client certificate (upstream `pkg/kubelet/certificate`): TLS bootstrap
//! from `--bootstrap-kubeconfig` and rotation before expiry (`rotateCertificates`),
//! through CertificateSigningRequests the controller-manager approves and signs.

pub mod bootstrap;
pub mod csr;
pub mod manager;
pub mod serving;
pub mod store;

/// The validity of the first certificate in a PEM bundle, as Unix seconds.
pub fn validity(pem: &str) -> Option<(i64, i64)> {
    let block = pem
        .split("-----END CERTIFICATE-----")
        .next()
        .map(|b| format!("{b}-----END CERTIFICATE-----\n"))?;
    let (_, der) = x509_parser::pem::parse_x509_pem(block.as_bytes()).ok()?;
    let cert = der.parse_x509().ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}
