//! Content negotiation: request bodies (JSON, YAML, protobuf; size-limited like upstream's
//! 3 MiB) and response media types (JSON, YAML, protobuf, `as=Table`,
//! `as=PartialObjectMetadata`).

use apimachinery::StatusError;
use apimachinery::protobuf;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Response, StatusCode};
use serde_json::Value;

pub use component_base::body::{Body, full};

/// Upstream's `MaxRequestBodyBytes`.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, StatusError> {
    match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusError::too_large(MAX_REQUEST_BODY_BYTES))
        }
        Err(e) => Err(StatusError::bad_request(format!(
            "error reading request body: {e}"
        ))),
    }
}

/// Reads and drops what a client is still sending (at most `limit` bytes, for at most
/// ten seconds) before it is answered without its body being read, as Go's server does
/// after a handler: an answer sent mid-upload would otherwise reach a client whose next
/// write fails on the closed connection, so it never reads the answer.
pub async fn discard_body(body: hyper::body::Incoming, limit: usize) {
    let read = Limited::new(body, limit).collect();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
}

/// Reads a request's body, keeping a copy for the audit event when one is recorded.
pub async fn read_request(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Bytes, StatusError> {
    let slot = req.extensions().get::<crate::audit::RequestBody>().cloned();
    let body = read_body(req.into_body()).await?;
    if let Some(slot) = slot {
        *slot.0.lock().unwrap() = Some(body.clone());
    }
    Ok(body)
}

/// The media type without parameters, lowercased.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// Parses a JSON, YAML or protobuf body into a JSON value.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, StatusError> {
    match essence(content_type).as_str() {
        protobuf::MEDIA_TYPE => protobuf::decode_object(body).map_err(|e| match e {
            protobuf::DecodeError::UnknownKind(_) => {
                StatusError::unsupported_media_type(protobuf::MEDIA_TYPE)
            }
            protobuf::DecodeError::Invalid(m) => StatusError::bad_request(m),
        }),
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            StatusError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| StatusError::bad_request(format!("yaml is not UTF-8: {e}")))?;
            // Repeated keys: the last wins, as upstream's non-strict YAML decoding (strict
            // decoding reports them, see `strict_decoding_errors`).
            let opts = serde_saphyr::options! {
                duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins,
            };
            serde_saphyr::from_str_with_options::<Value>(text, opts).map_err(|e| {
                StatusError::bad_request(format!(
                    "couldn't get version/kind; yaml parse error: {e}"
                ))
            })
        }
        other => Err(StatusError::unsupported_media_type(other)),
    }
}

/// What strict decoding refuses in a body beyond unknown fields: fields named twice.
/// JSON: `duplicate field "spec.replicas"` per field; YAML: go-yaml's
/// `line 11: key "foo" already set in map` (the first repeated key).
pub fn duplicate_field_errors(content_type: &str, body: &[u8]) -> Vec<String> {
    match essence(content_type).as_str() {
        "" | "application/json" | "*/*" => apimachinery::strict::duplicate_fields(body)
            .into_iter()
            .map(|p| format!("duplicate field {p:?}"))
            .collect(),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            yaml_duplicate_key(body).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// The first repeated mapping key of a YAML document, as go-yaml words it.
pub fn yaml_duplicate_key(body: &[u8]) -> Option<String> {
    use serde_saphyr::Error;
    let text = std::str::from_utf8(body).ok()?;
    let mut err = serde_saphyr::from_str::<Value>(text).err()?;
    // Errors come wrapped with a rendering of the source around them.
    while let Error::WithSnippet { error, .. } | Error::AliasError { error, .. } = err {
        err = *error;
    }
    match err {
        Error::DuplicateMappingKey { key, location } => Some(format!(
            "line {}: key {:?} already set in map",
            location.line(),
            key.unwrap_or_default()
        )),
        _ => None,
    }
}

/// How the client wants objects rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf`, for the kinds that have a protobuf form
    /// (custom resources are answered in JSON, which every client decodes).
    Protobuf,
    /// `as=Table`; `include_object` is `None`, `Metadata` (default) or `Object`.
    Table {
        include_object: String,
    },
    PartialObjectMetadata {
        list: bool,
        protobuf: bool,
    },
}

impl Format {
    /// The media type objects derived from the stored ones (tables, metadata) are encoded in.
    pub fn plain(&self) -> Format {
        match self {
            Format::PartialObjectMetadata { protobuf: true, .. } | Format::Protobuf => {
                Format::Protobuf
            }
            _ => Format::Json,
        }
    }
}

/// Picks the first acceptable media type of an `Accept` header. `tables`: whether the
/// resource renders Tables (upstream's storages without a TableConvertor, the create-only
/// reviews and subresources, do not: a Table-only `Accept` is then a 406).
pub fn negotiate(
    accept: Option<&str>,
    include_object: Option<&str>,
    tables: bool,
) -> Result<Format, StatusError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    for item in accept.split(',') {
        let mut params = item.split(';').map(str::trim);
        let mt = params.next().unwrap_or_default().to_lowercase();
        let (mut as_, mut g) = (None, None);
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(v.trim().to_string()),
                    "g" => g = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        if !matches!(
            mt.as_str(),
            "application/json"
                | "application/yaml"
                | "*/*"
                | "application/*"
                | protobuf::MEDIA_TYPE
        ) {
            continue;
        }
        match as_.as_deref() {
            None => {
                return Ok(match mt.as_str() {
                    "application/yaml" => Format::Yaml,
                    protobuf::MEDIA_TYPE => Format::Protobuf,
                    _ => Format::Json,
                });
            }
            Some("Table")
                if tables && g.as_deref() == Some("meta.k8s.io") && mt == "application/json" =>
            {
                return Ok(Format::Table {
                    include_object: include_object.unwrap_or("Metadata").to_string(),
                });
            }
            Some(a @ ("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if g.as_deref() == Some("meta.k8s.io")
                    && (mt == "application/json" || mt == protobuf::MEDIA_TYPE) =>
            {
                return Ok(Format::PartialObjectMetadata {
                    list: a.ends_with("List"),
                    protobuf: mt == protobuf::MEDIA_TYPE,
                });
            }
            _ => continue,
        }
    }
    Err(StatusError::not_acceptable(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

pub fn response(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", content_type)
        .header("Cache-Control", "no-cache, private")
        .body(full(body))
        .unwrap()
}

/// Encodes a JSON value in the negotiated plain format (JSON, YAML or protobuf).
pub fn encode(code: u16, v: &Value, format: &Format) -> Response<Body> {
    match format {
        Format::Yaml => {
            let y = serde_saphyr::to_string(v).unwrap_or_default();
            response(code, "application/yaml", y)
        }
        Format::Protobuf if protobuf::can_encode(v) => match protobuf::encode_object(v) {
            Ok(b) => response(code, protobuf::MEDIA_TYPE, b),
            Err(e) => {
                tracing::warn!(error = %e, "answering in JSON: the object has no protobuf form");
                encode(code, v, &Format::Json)
            }
        },
        _ => response(
            code,
            "application/json",
            serde_json::to_vec(v).unwrap_or_default(),
        ),
    }
}

pub fn error_response(e: &StatusError) -> Response<Body> {
    let mut r = response(
        e.code,
        "application/json",
        serde_json::to_vec(&e.to_status()).unwrap_or_default(),
    );
    if let Some(after) = e
        .details
        .as_ref()
        .and_then(|d| d["retryAfterSeconds"].as_u64())
    {
        r.headers_mut().insert("Retry-After", after.into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl), None, true).unwrap(),
            Format::Table {
                include_object: "Metadata".into()
            }
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*"), None, true).unwrap(),
            Format::Protobuf
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"),
                None,
                true
            )
            .unwrap(),
            Format::PartialObjectMetadata {
                list: true,
                protobuf: true
            }
        );
        assert_eq!(
            negotiate(Some("application/yaml"), None, true).unwrap(),
            Format::Yaml
        );
        assert_eq!(
            negotiate(Some("application/cbor"), None, true)
                .unwrap_err()
                .code,
            406
        );
        // A resource without Tables refuses a Table-only Accept, and falls back otherwise.
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(negotiate(Some(table), None, false).unwrap_err().code, 406);
        assert_eq!(
            negotiate(Some(&format!("{table},application/json")), None, false).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(Some("application/cbor"), None, true)
                .unwrap_err()
                .code,
            406
        );
        assert!(decode_body("application/json", b"{not json").is_err());
        assert_eq!(
            decode_body("application/yaml", b"a: 1\nb: [x]").unwrap(),
            serde_json::json!({"a": 1, "b": ["x"]})
        );
        assert_eq!(
            decode_body("application/vnd.kubernetes.protobuf", b"k8s\0")
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            decode_body("application/vnd.kubernetes.protobuf", b"{}")
                .unwrap_err()
                .code,
            400
        );
    }
}

#[cfg(test)]
mod duplicate_tests {
    #[test]
    fn yaml_duplicate_keys_are_found_with_their_line() {
        let doc = b"\napiVersion: v1\nkind: X\nspec:\n  foo: foo1\n  foo: foo2\n";
        assert_eq!(
            super::yaml_duplicate_key(doc).as_deref(),
            Some(r#"line 6: key "foo" already set in map"#)
        );
        assert_eq!(super::yaml_duplicate_key(b"a: 1\nb: 2\n"), None);
    }
}
