//! Front-proxy authentication (upstream `authentication/request/headerrequest`): a proxy
//! that presents a client certificate signed by `--requestheader-client-ca-file` (and, when
//! `--requestheader-allowed-names` is set, with one of those common names) vouches for the
//! user named in its request headers.

use super::{UserInfo, unauthorized};
use apimachinery::StatusError;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::sync::Arc;

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
    /// `Ok(None)`: not a front-proxy request (no proxy certificate, or no user header).
    pub fn authenticate(
        &self,
        chain: &[CertificateDer<'static>],
        headers: &http::HeaderMap,
    ) -> Result<Option<UserInfo>, StatusError> {
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
            let cn = super::x509::user(leaf).map(|u| u.name).unwrap_or_default();
            if !self.allowed_names.contains(&cn) {
                tracing::debug!(cn, "front-proxy certificate's common name is not allowed");
                return Err(unauthorized());
            }
        }
        let Some(name) = first(headers, &self.username_headers) else {
            return Ok(None);
        };
        let mut user = UserInfo {
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
