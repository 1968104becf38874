//! Registry credentials from a pod's `imagePullSecrets` (upstream `pkg/credentialprovider`
//! `BasicDockerKeyring` with `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`
//! Secrets): the entries whose registry matches the image (host, with `*` globs, and path
//! prefix), most specific first, each handed to the runtime as CRI auth until a pull
//! succeeds.

use crate::cri::api;
use base64::Engine;
use serde_json::Value;

/// One credential of a docker config, keyed by the registry location it is for.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// `host[:port][/path]`, scheme and docker.io's legacy index URL normalized away.
    pub location: String,
    pub username: String,
    pub password: String,
}

/// `https://index.docker.io/v1/` is docker.io; schemes and trailing slashes go.
fn normalize(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    match k {
        "index.docker.io/v1" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// The entries of a docker config's `auths` map (or a legacy `.dockercfg` map).
fn entries(auths: &Value) -> Vec<Entry> {
    let Some(map) = auths.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(key, v)| {
            let (mut user, mut pass) = (
                v["username"].as_str().unwrap_or_default().to_string(),
                v["password"].as_str().unwrap_or_default().to_string(),
            );
            if let Some(auth) = v["auth"].as_str().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()?;
                let text = String::from_utf8(decoded).ok()?;
                let (u, p) = text.split_once(':')?;
                (user, pass) = (u.to_string(), p.to_string());
            }
            Some(Entry {
                location: normalize(key),
                username: user,
                password: pass,
            })
        })
        .collect()
}

/// The entries of a pull Secret (of type dockerconfigjson or dockercfg).
pub fn from_secret(secret: &k8s_openapi::api::core::v1::Secret) -> Vec<Entry> {
    let parse = |key: &str| {
        let data = secret.data.as_ref()?.get(key)?;
        serde_json::from_slice::<Value>(&data.0).ok()
    };
    match secret.type_.as_deref().unwrap_or_default() {
        "kubernetes.io/dockerconfigjson" => parse(".dockerconfigjson")
            .map(|v| entries(&v["auths"]))
            .unwrap_or_default(),
        "kubernetes.io/dockercfg" => parse(".dockercfg").map(|v| entries(&v)).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The registry host and repository path of an image reference (docker.io when the
/// first component is not a host).
fn image_location(image: &str) -> (String, String) {
    let name = image.split('@').next().unwrap_or_default();
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (host, path) = match is_host {
        true => (first.to_string(), rest.to_string()),
        false => ("docker.io".to_string(), name.to_string()),
    };
    // The tag is not part of the path.
    let path = match path.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p.to_string(),
        _ => path,
    };
    (host, path)
}

/// Whether `pattern` (`*.example.com`, `host:port`) matches `host` (upstream `URLsMatch`:
/// globs per dot-separated part, ports must agree).
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p_host, p_port) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (h_host, h_port) = host.split_once(':').unwrap_or((host, ""));
    let (pp, hp): (Vec<&str>, Vec<&str>) =
        (p_host.split('.').collect(), h_host.split('.').collect());
    p_port == h_port && pp.len() == hp.len() && pp.iter().zip(&hp).all(|(p, h)| *p == "*" || p == h)
}

/// The credentials for `image`, most specific location first.
pub fn lookup<'a>(entries: &'a [Entry], image: &str) -> Vec<&'a Entry> {
    let (host, path) = image_location(image);
    let mut found: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            let (e_host, e_path) = e.location.split_once('/').unwrap_or((&e.location, ""));
            host_matches(e_host, &host)
                && (e_path.is_empty() || path == e_path || path.starts_with(&format!("{e_path}/")))
        })
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.location.len()));
    found
}

/// The CRI form of a credential (no server address, as upstream: the runtime applies it
/// to the image's registry; containerd would parse a bare `host:port` as a bad URL).
pub fn auth(e: &Entry) -> api::AuthConfig {
    api::AuthConfig {
        username: e.username.clone(),
        password: e.password.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(type_: &str, key: &str, json: &str) -> Vec<Entry> {
        use k8s_openapi::ByteString;
        from_secret(&k8s_openapi::api::core::v1::Secret {
            type_: Some(type_.into()),
            data: Some([(key.to_string(), ByteString(json.as_bytes().to_vec()))].into()),
            ..Default::default()
        })
    }

    #[test]
    fn secrets_parse_in_both_formats() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let e = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            &format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}, "reg.example:5000": {{"username": "bob", "password": "pw"}}}}}}"#
            ),
        );
        assert_eq!(e.len(), 2);
        assert!(e.contains(&Entry {
            location: "docker.io".into(),
            username: "alice".into(),
            password: "s3cret".into()
        }));
        let legacy = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            r#"{"quay.io": {"username": "u", "password": "p"}}"#,
        );
        assert_eq!(legacy[0].location, "quay.io");
        assert!(secret("Opaque", ".dockercfg", "{}").is_empty());
    }

    #[test]
    fn images_find_their_credentials() {
        let e = |l: &str| Entry {
            location: l.into(),
            username: l.into(),
            password: String::new(),
        };
        let all = vec![
            e("docker.io"),
            e("reg.example:5000"),
            e("reg.example:5000/team"),
            e("*.gcr.io"),
        ];
        let names = |image: &str| {
            lookup(&all, image)
                .iter()
                .map(|e| e.location.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("busybox:1.36"), ["docker.io"]);
        assert_eq!(
            names("reg.example:5000/team/app:v1"),
            ["reg.example:5000/team", "reg.example:5000"]
        );
        assert_eq!(names("reg.example:5000/other/app"), ["reg.example:5000"]);
        assert_eq!(names("reg.example/app"), Vec::<String>::new());
        assert_eq!(names("eu.gcr.io/p/app@sha256:abc"), ["*.gcr.io"]);
        assert_eq!(names("registry.k8s.io/pause:3.10"), Vec::<String>::new());
    }
}
