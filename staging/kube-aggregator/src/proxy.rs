//! Proxying to an extension API server (upstream `kube-aggregator/pkg/apiserver/
//! handler_proxy.go`): the caller's identity goes in the front-proxy headers the backend
//! trusts because the connection carries `--proxy-client-cert-file`; the caller's own
//! credentials and any identity headers it sent are not passed on. The backend is
//! verified with the APIService's `caBundle` as `<service>.<namespace>.svc`, or not at all
//! with `insecureSkipTLSVerify`.

use apiserver::authentication::UserInfo;
use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// `--proxy-client-cert-file` / `--proxy-client-key-file`.
pub struct ProxyClientCert {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ProxyClientCert {
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        let (certs, key) = component_base::tls::load_pem(cert, key)?;
        Ok(ProxyClientCert { certs, key })
    }
}

/// Upstream's `SetAuthProxyHeaders`: the user, groups and extra as `X-Remote-*`.
pub fn set_auth_proxy_headers(headers: &mut hyper::HeaderMap, user: &UserInfo) {
    let stale: Vec<hyper::header::HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.starts_with("x-remote-") || k.starts_with("impersonate-")
        })
        .cloned()
        .collect();
    for k in stale {
        headers.remove(k);
    }
    headers.remove(hyper::header::AUTHORIZATION);
    let mut put = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::try_from(k),
            hyper::header::HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    };
    put("X-Remote-User", &user.name);
    for g in &user.groups {
        put("X-Remote-Group", g);
    }
    for (k, vs) in &user.extra {
        let key = format!("X-Remote-Extra-{}", escape_extra_key(k));
        for v in vs {
            put(&key, v);
        }
    }
}

/// Extra keys are URL path-escaped in header names (upstream's `headerKeyEscape`).
fn escape_extra_key(k: &str) -> String {
    let mut out = String::new();
    for b in k.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'*+^`|".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The TLS client for one APIService's server.
pub fn tls_for(
    spec: &Value,
    client: Option<&ProxyClientCert>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let roots = match spec["insecureSkipTLSVerify"].as_bool().unwrap_or(false) {
        true => None,
        false => {
            let pem = match spec["caBundle"].as_str() {
                Some(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("caBundle: {e}"))?,
                // Without a bundle the system's trust roots verify the server.
                None => std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default(),
            };
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("caBundle: {e}"))?;
            Some(certs)
        }
    };
    let identity = client.map(|c| (c.certs.clone(), c.key.clone_key()));
    component_base::tls::client(roots.as_deref(), identity)
        .map_err(|e| format!("APIService TLS (caBundle, --proxy-client-cert-file): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_replace_what_the_caller_sent() {
        let mut h = hyper::HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("x-remote-user", "mallory".parse().unwrap());
        h.insert("x-remote-extra-scopes", "all".parse().unwrap());
        h.insert("impersonate-user", "root".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        let user = UserInfo {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["devs".into(), "system:authenticated".into()],
            extra: [("example.org/team a".to_string(), vec!["x".to_string()])].into(),
        };
        set_auth_proxy_headers(&mut h, &user);
        let all =
            |k: &str| -> Vec<&str> { h.get_all(k).iter().map(|v| v.to_str().unwrap()).collect() };
        assert_eq!(all("x-remote-user"), vec!["alice"]);
        assert_eq!(all("x-remote-group"), vec!["devs", "system:authenticated"]);
        assert_eq!(all("x-remote-extra-example.org%2Fteam%20a"), vec!["x"]);
        assert!(h.get("authorization").is_none() && h.get("impersonate-user").is_none());
        assert!(h.get("x-remote-extra-scopes").is_none());
        assert_eq!(all("accept"), vec!["application/json"]);
    }
}
