//! Authentication by client certificate, shared by the apiserver and every component's
//! secure port (upstream `apiserver/pkg/authentication/request/{x509,headerrequest}`):
//! the user a verified x509 client certificate names (CN = user, O = groups), and a front
//! proxy that presents a client certificate signed by `--requestheader-client-ca-file`
//! (and, when `--requestheader-allowed-names` is set, with one of those common names)
//! vouching for the user named in its request headers.

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who a credential names (upstream `user.Info`, without the authenticated group).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A front-proxy certificate whose common name is not in `--requestheader-allowed-names`.
#[derive(Debug)]
pub struct NotAllowed;

/// The user of a client certificate (its chain verified elsewhere): the subject's common
/// name, its organizations as groups; None without a common name.
pub fn x509_user(cert: &CertificateDer<'_>) -> Option<User> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some(User {
        name,
        groups,
        ..Default::default()
    })
}

pub struct RequestHeader {
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// Common names a proxy certificate may carry (empty: any the CA signed).
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

/// The values of the first of `names` present in the request, each header line's value
/// one entry.
fn values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn first(headers: &http::HeaderMap, names: &[String]) -> Option<String> {
    names
        .iter()
        .find_map(|n| values(headers, n).into_iter().next())
}

/// `%XX` escapes in extra keys (upstream escapes keys that are not valid header names).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_string())
}

impl RequestHeader {
    /// `Ok(None)`: not a front-proxy request (no proxy certificate, or no user header);
    /// `Err`: a proxy certificate whose common name is not allowed.
    pub fn authenticate(
        &self,
        chain: &[CertificateDer<'static>],
        headers: &http::HeaderMap,
    ) -> Result<Option<User>, NotAllowed> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        if self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_err()
        {
            return Ok(None);
        }
        if !self.allowed_names.is_empty() {
            let cn = x509_user(leaf).map(|u| u.name).unwrap_or_default();
            if !self.allowed_names.contains(&cn) {
                tracing::debug!(cn, "front-proxy certificate's common name is not allowed");
                return Err(NotAllowed);
            }
        }
        let Some(name) = first(headers, &self.username_headers) else {
            return Ok(None);
        };
        let mut user = User {
            name,
            uid: first(headers, &self.uid_headers).unwrap_or_default(),
            groups: self
                .group_headers
                .iter()
                .flat_map(|h| values(headers, h))
                .collect(),
            ..Default::default()
        };
        for (header, _) in headers.iter() {
            let lower = header.as_str();
            for prefix in &self.extra_headers_prefix {
                let prefix = prefix.to_ascii_lowercase();
                if let Some(key) = lower.strip_prefix(&prefix)
                    && !key.is_empty()
                {
                    let entry = user.extra.entry(unescape(key)).or_default();
                    if entry.is_empty() {
                        entry.extend(values(headers, lower));
                    }
                }
            }
        }
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_extra_keys() {
        assert_eq!(
            super::unescape("example.com%2fscopes"),
            "example.com/scopes"
        );
        assert_eq!(super::unescape("plain"), "plain");
        assert_eq!(super::unescape("bad%zz%"), "bad%zz%");
    }
}
