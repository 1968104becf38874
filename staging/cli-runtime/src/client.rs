//! Requests to the apiserver as kubectl makes them, and its errors as kubectl prints
//! them (`Error from server (NotFound): …`). Upstream twins:
//! `client-go/rest/request.go`, `kubectl/pkg/cmd/util/helpers.go` (`CheckErr`).

use http_body_util::BodyExt;
use serde_json::Value;

/// A client for one cluster, as the flags and kubeconfig chose it.
#[derive(Clone)]
pub struct RestClient {
    client: kube::Client,
    /// `host:port` of the server, for the discovery cache and connection errors.
    pub host: String,
    /// The server's URL as configured (`cluster-info` prints it).
    pub server: String,
    pub verbosity: u8,
}

pub struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// A failed request: the server's `Status`, or no answer at all.
#[derive(Debug, Clone)]
pub enum Error {
    Status {
        code: u16,
        reason: String,
        message: String,
        status: Value,
    },
    Transport(String),
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { code: 404, .. })
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::Status { reason, .. } if reason == "AlreadyExists")
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Status { code: 409, .. })
    }

    /// The line kubectl prints for this error (without `error: ` for server errors).
    pub fn message(&self) -> String {
        if let Error::Status {
            reason,
            message,
            status,
            ..
        } = self
            && reason == "Invalid"
        {
            return invalid_message(message, status);
        }
        match self {
            Error::Status {
                reason, message, ..
            } if reason == "Unauthorized" => {
                format!("error: You must be logged in to the server ({message})")
            }
            Error::Status {
                reason, message, ..
            } if !reason.is_empty() => {
                format!("Error from server ({reason}): {message}")
            }
            Error::Status { message, .. } => format!("Error from server: {message}"),
            Error::Transport(m) => m.clone(),
        }
    }

    /// The server's message alone.
    pub fn server_message(&self) -> String {
        match self {
            Error::Status { message, .. } => message.clone(),
            Error::Transport(m) => m.clone(),
        }
    }
}

/// kubectl's wording of an `Invalid` status: `The Kind "name" is invalid: field: message`,
/// one `* field: message` line per cause when there are several.
fn invalid_message(message: &str, status: &Value) -> String {
    let details = &status["details"];
    let mut s = "The request is invalid".to_string();
    if !details.is_object() {
        if !message.is_empty() {
            s = format!("{s}: {message}");
        }
        return s;
    }
    let kind = details["kind"].as_str().unwrap_or_default();
    let name = details["name"].as_str().unwrap_or_default();
    let causes: Vec<String> = {
        let mut seen = Vec::new();
        for c in details["causes"].as_array().into_iter().flatten() {
            let m = format!(
                "{}: {}",
                c["field"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            );
            if !seen.contains(&m) {
                seen.push(m);
            }
        }
        seen
    };
    if !kind.is_empty() || !name.is_empty() {
        s = format!("The {kind} {name:?} is invalid");
    } else if !message.is_empty() && causes.is_empty() {
        s = format!("{s}: {message}");
    }
    match causes.len() {
        0 => s,
        1 => format!("{s}: {}", causes[0]),
        _ => format!("{s}: \n* {}", causes.join("\n* ")),
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// How many server warnings this process printed (`--warnings-as-errors`).
pub static WARNINGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub const JSON: &str = "application/json";

/// What requests say they come from: upstream kubectl's `User-Agent` shape
/// (`kubectl/<version> (<os>/<arch>) kubernetes/<commit>`). The server names a write's
/// field manager after its first part when the request names none.
pub fn user_agent() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!(
        "kubectl/{} ({}/{arch}) kubernetes/{}",
        crate::KUBECTL_VERSION,
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION")
    )
}
/// What client-go's typed clientsets ask for: protobuf for built-in kinds, JSON for the rest.
pub const PROTOBUF_OR_JSON: &str = "application/vnd.kubernetes.protobuf,application/json";

/// What `kubectl get` asks for: a server-side table, else the object.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

impl RestClient {
    pub fn new(config: kube::Config, verbosity: u8) -> Result<RestClient, String> {
        let host = config
            .cluster_url
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| format!("error creating client: {e}"))?;
        Ok(RestClient {
            client,
            host,
            server,
            verbosity,
        })
    }

    /// One request; non-2xx answers come back as [`Error::Status`].
    pub async fn request(
        &self,
        method: http::Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, Error> {
        let started = std::time::Instant::now();
        let resp = self.raw(method.clone(), path, accept, body).await?;
        if self.verbosity >= 6 {
            eprintln!(
                "{method} {path} {} in {} milliseconds",
                resp.status,
                started.elapsed().as_millis()
            );
        }
        for w in resp.headers.get_all("warning") {
            if let Some(text) = w.to_str().ok().and_then(warning_text) {
                eprintln!("Warning: {text}");
                WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if !resp.status.is_success() {
            return Err(status_error(resp.status, &resp.body));
        }
        Ok(resp)
    }

    /// The raw exchange, whatever the status.
    pub async fn raw(
        &self,
        method: http::Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, Error> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Accept", accept)
            .header("User-Agent", user_agent());
        let bytes = match body {
            Some((ct, b)) => {
                req = req.header("Content-Type", ct);
                b
            }
            None => Vec::new(),
        };
        if self.verbosity >= 7 {
            // client-go's round tripper at -v=7: the request line and its headers
            // (credentials are added below this layer and never shown).
            eprintln!(
                "{} {}{path}",
                req.method_ref().map(|m| m.as_str()).unwrap_or(""),
                self.server
            );
            eprintln!("Request Headers:");
            for (k, v) in req.headers_ref().into_iter().flatten() {
                eprintln!(
                    "    {}: {}",
                    canonical_header(k.as_str()),
                    v.to_str().unwrap_or("")
                );
            }
        }
        let req = req
            .body(kube::client::Body::from(bytes))
            .map_err(|e| Error::Transport(format!("error: {e}")))?;
        let resp = self
            .client
            .send(req)
            .await
            .map_err(|e| self.transport_error(e))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("error: reading the response: {e}")))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A streaming GET (watches, `logs -f`): the response, body unread.
    pub async fn stream(
        &self,
        path: &str,
        accept: &str,
    ) -> Result<http::Response<kube::client::Body>, Error> {
        let req = http::Request::builder()
            .method(http::Method::GET)
            .uri(path)
            .header("Accept", accept)
            .header("User-Agent", user_agent())
            .body(kube::client::Body::empty())
            .map_err(|e| Error::Transport(format!("error: {e}")))?;
        let resp = self
            .client
            .send(req)
            .await
            .map_err(|e| self.transport_error(e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            return Err(status_error(status, &body));
        }
        Ok(resp)
    }

    /// One object, as the builder's `Info.Get` reads it: when it is not found in a
    /// namespace other than `default`, a missing namespace is the error reported.
    pub async fn get_object(
        &self,
        path: &str,
        accept: &str,
        namespace: &str,
    ) -> Result<Value, Error> {
        match self.get_json(path, accept).await {
            Err(e) if e.is_not_found() && !namespace.is_empty() && namespace != "default" => {
                let ns_path = format!(
                    "/api/v1/namespaces/{}",
                    crate::discovery::percent_encode(namespace)
                );
                match self.get_json(&ns_path, JSON).await {
                    Err(ns_err) if ns_err.is_not_found() => Err(ns_err),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    pub async fn get_json(&self, path: &str, accept: &str) -> Result<Value, Error> {
        let resp = self.request(http::Method::GET, path, accept, None).await?;
        decode(&resp.body)
    }

    pub async fn send_json(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| Error::Transport(format!("error: {e}")))?;
        let resp = self
            .request(method, path, JSON, Some((content_type, bytes)))
            .await?;
        decode(&resp.body)
    }

    /// A GET as client-go's typed clientsets make it (`f.KubernetesClientSet()`): upstream
    /// kubectl's generators, describers, drain, events and auth talk protobuf to the
    /// server, while the resource builder's requests are JSON.
    pub async fn typed_get(&self, path: &str) -> Result<Value, Error> {
        let resp = self
            .request(http::Method::GET, path, PROTOBUF_OR_JSON, None)
            .await?;
        decode(&resp.body)
    }

    /// A POST or PUT of a whole object by a typed clientset: a protobuf body for kinds that
    /// have one (custom resources stay JSON, as client-go's dynamic client sends them).
    pub async fn typed_send(
        &self,
        method: http::Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        let (content_type, bytes) = if apimachinery::protobuf::can_encode(body) {
            let bytes = apimachinery::protobuf::encode_object(body).map_err(|e| {
                Error::Transport(format!("error: encoding the request as protobuf: {e}"))
            })?;
            (apimachinery::protobuf::MEDIA_TYPE, bytes)
        } else {
            let bytes =
                serde_json::to_vec(body).map_err(|e| Error::Transport(format!("error: {e}")))?;
            (JSON, bytes)
        };
        let resp = self
            .request(method, path, PROTOBUF_OR_JSON, Some((content_type, bytes)))
            .await?;
        decode(&resp.body)
    }

    /// A PATCH by a typed clientset: the patch is JSON, the answer protobuf.
    pub async fn typed_patch(
        &self,
        path: &str,
        patch_type: &str,
        patch: &Value,
    ) -> Result<Value, Error> {
        let bytes =
            serde_json::to_vec(patch).map_err(|e| Error::Transport(format!("error: {e}")))?;
        let resp = self
            .request(
                http::Method::PATCH,
                path,
                PROTOBUF_OR_JSON,
                Some((patch_type, bytes)),
            )
            .await?;
        decode(&resp.body)
    }

    /// One request as built, the response unread (upgrades keep their connection).
    pub async fn send(
        &self,
        req: http::Request<kube::client::Body>,
    ) -> Result<http::Response<kube::client::Body>, Error> {
        self.client
            .send(req)
            .await
            .map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: kube::Error) -> Error {
        let text = format!("{e:?}");
        if text.contains("ConnectionRefused") || text.contains("Connection refused") {
            return Error::Transport(format!(
                "The connection to the server {} was refused - did you specify the right host or port?",
                self.host
            ));
        }
        Error::Transport(format!("Unable to connect to the server: {e}"))
    }
}

/// Go's canonical header spelling (`content-type` → `Content-Type`).
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A response body in JSON or in Kubernetes' protobuf envelope (which starts `k8s\0`,
/// never valid JSON).
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if body.starts_with(apimachinery::protobuf::MAGIC) {
        return apimachinery::protobuf::decode_object(body).map_err(|e| {
            Error::Transport(format!("error: decoding the server's protobuf answer: {e}"))
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::Transport(format!("error: decoding the server's answer: {e}")))
}

/// client-go's reading of an error answer: a `Status` body, else a generic message
/// by code.
pub fn status_error(code: http::StatusCode, body: &[u8]) -> Error {
    if let Ok(v) = decode(body)
        && v["kind"] == "Status"
    {
        return Error::Status {
            code: code.as_u16(),
            reason: v["reason"].as_str().unwrap_or_default().to_string(),
            message: v["message"].as_str().unwrap_or_default().to_string(),
            status: v,
        };
    }
    let (reason, message) = match code.as_u16() {
        400 => ("BadRequest", "the server rejected our request for an unknown reason".to_string()),
        401 => ("Unauthorized", "the server has asked for the client to provide credentials".into()),
        403 => ("Forbidden", String::from_utf8_lossy(body).trim().to_string()),
        404 => ("NotFound", "the server could not find the requested resource".into()),
        405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource".into()),
        409 => ("Conflict", "the server reported a conflict".into()),
        422 => ("Invalid", "the server rejected our request due to an error in our request".into()),
        429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".into()),
        500 => ("InternalError", "an error on the server has prevented the request from succeeding".into()),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request".into()),
        504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".into()),
        _ => ("", format!("an error on the server ({}) has prevented the request from succeeding", String::from_utf8_lossy(body).trim())),
    };
    Error::Status {
        code: code.as_u16(),
        reason: reason.into(),
        message,
        status: Value::Null,
    }
}

// `299 - "text"` → `text`.
fn warning_text(header: &str) -> Option<String> {
    let rest = header.strip_prefix("299 ")?;
    let (_agent, quoted) = rest.split_once(' ')?;
    let quoted = quoted.trim();
    let end = quoted[1..].find('"')? + 1;
    Some(quoted[1..end].replace("\\\"", "\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_kubectl_prints_them() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404}"#;
        let e = status_error(http::StatusCode::NOT_FOUND, body);
        assert_eq!(
            e.message(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        assert!(e.is_not_found());
        let e = status_error(http::StatusCode::NOT_FOUND, b"404 page not found");
        assert_eq!(
            e.message(),
            "Error from server (NotFound): the server could not find the requested resource"
        );
    }

    #[test]
    fn warnings_are_unquoted() {
        assert_eq!(
            warning_text("299 - \"policy/v1beta1 is deprecated\"").as_deref(),
            Some("policy/v1beta1 is deprecated")
        );
    }
}
