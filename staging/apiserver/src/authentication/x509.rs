//! x509 client certificates (upstream `authentication/request/x509`): once the chain is
//! verified against `--client-ca-file` (see the `Authenticator`), the subject's common
//! name is the user and its organizations are the groups.

use super::{UserInfo, unauthorized};
use apimachinery::StatusError;
use rustls::pki_types::CertificateDer;

pub fn user(cert: &CertificateDer<'_>) -> Result<UserInfo, StatusError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| unauthorized())?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(unauthorized());
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Ok(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}
