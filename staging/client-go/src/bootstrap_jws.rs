//! Bootstrap token JWS (upstream `k8s.io/cluster-bootstrap/token/jws`): the detached
//! HS256 signature of the `kube-public/cluster-info` kubeconfig that the bootstrap
//! signer publishes and `kubeadm join` checks with nothing but its token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A compact JWS with detached payload (`header..signature`), HS256 keyed by the token
/// secret, with the token id as key id.
pub fn detached_jws(payload: &str, token_id: &str, token_secret: &str) -> String {
    let header = serde_json::json!({"alg": "HS256", "kid": token_id}).to_string();
    let header = URL_SAFE_NO_PAD.encode(header);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// Upstream's `DetachedTokenIsValid`: the signature is the one this token makes.
pub fn detached_jws_is_valid(jws: &str, payload: &str, token_id: &str, token_secret: &str) -> bool {
    let want = detached_jws(payload, token_id, token_secret);
    // Constant-time comparison of what an attacker may probe.
    jws.len() == want.len()
        && jws
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jws_is_detached_hs256_with_the_token_id() {
        let jws = detached_jws("payload", "abcdef", "0123456789abcdef");
        let (header, sig) = jws.split_once("..").unwrap();
        let header = URL_SAFE_NO_PAD.decode(header).unwrap();
        assert_eq!(header, br#"{"alg":"HS256","kid":"abcdef"}"#);
        // The signature covers header.payload, as RFC 7515 says.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"0123456789abcdef");
        let input = format!(
            "{}.{}",
            jws.split("..").next().unwrap(),
            URL_SAFE_NO_PAD.encode("payload")
        );
        ring::hmac::verify(
            &key,
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
        .unwrap();
        assert!(detached_jws_is_valid(
            &jws,
            "payload",
            "abcdef",
            "0123456789abcdef"
        ));
        assert!(!detached_jws_is_valid(
            &jws,
            "payload2",
            "abcdef",
            "0123456789abcdef"
        ));
        assert!(!detached_jws_is_valid(
            &jws,
            "payload",
            "abcdef",
            "0123456789abcdeg"
        ));
    }
}
