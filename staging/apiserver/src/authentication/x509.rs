//! x509 client certificates (upstream `authentication/request/x509`): once the chain is
//! verified against `--client-ca-file` (see the `Authenticator`), the subject's common
//! name is the user and its organizations are the groups.

use super::{UserInfo, unauthorized};
use apimachinery::StatusError;
use rustls::pki_types::CertificateDer;

pub fn user(cert: &CertificateDer<'_>) -> Result<UserInfo, StatusError> {
    component_base::authentication::x509_user(cert)
        .map(UserInfo::from)
        .ok_or_else(unauthorized)
}
