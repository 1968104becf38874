//! `kubectl proxy`: a local HTTP server in front of the apiserver, with this kubectl's
//! credentials, upstream's request filter (paths, hosts, methods) and optional static
//! files. Upgrades (port-forward, and exec/attach when the filter allows them) become a
//! byte pipe. Upstream twins: `kubectl/pkg/cmd/proxy/proxy.go`,
//! `kubectl/pkg/proxy/proxy_server.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::RestClient;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DEFAULT_PORT: u16 = 8001;
pub const DEFAULT_HOST_ACCEPT_RE: &str = r"^localhost$,^127\.0\.0\.1$,^\[::1\]$";
pub const DEFAULT_PATH_ACCEPT_RE: &str = "^.*";
pub const DEFAULT_PATH_REJECT_RE: &str = "^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach";
pub const DEFAULT_METHOD_REJECT_RE: &str = "^$";

#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// Also serve static files from the given directory under the specified prefix.
    #[arg(short = 'w', long)]
    pub www: Option<String>,
    /// Prefix to serve static files under, if static file directory is specified.
    #[arg(short = 'P', long = "www-prefix", default_value = "/static/")]
    pub www_prefix: String,
    /// Prefix to serve the proxied API under.
    #[arg(long = "api-prefix", default_value = "/")]
    pub api_prefix: String,
    /// Regular expression for paths that the proxy should accept.
    #[arg(long = "accept-paths", default_value = DEFAULT_PATH_ACCEPT_RE)]
    pub accept_paths: String,
    /// Regular expression for paths that the proxy should reject. Paths specified here will be rejected even accepted by --accept-paths.
    #[arg(long = "reject-paths", default_value = DEFAULT_PATH_REJECT_RE)]
    pub reject_paths: String,
    /// Regular expression for hosts that the proxy should accept.
    #[arg(long = "accept-hosts", default_value = DEFAULT_HOST_ACCEPT_RE)]
    pub accept_hosts: String,
    /// Regular expression for HTTP methods that the proxy should reject (example --reject-methods='POST,PUT,PATCH').
    #[arg(long = "reject-methods", default_value = DEFAULT_METHOD_REJECT_RE)]
    pub reject_methods: String,
    /// The port on which to run the proxy. Set to 0 to pick a random port.
    #[arg(short = 'p', long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// The IP address on which to serve on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// If true, disable request filtering in the proxy. This is dangerous, and can leave you vulnerable to XSRF attacks, when used with an accessible port.
    #[arg(long = "disable-filter")]
    pub disable_filter: bool,
    /// Unix socket on which to run the proxy.
    #[arg(short = 'u', long = "unix-socket")]
    pub unix_socket: Option<String>,
    /// If true, enables automatic path appending of the kube context server path to each request.
    #[arg(long = "append-server-path")]
    pub append_server_path: bool,
}

/// `proxy.FilterServer`: comma-separated regular expressions.
pub struct Filter {
    accept_paths: Vec<regex::Regex>,
    reject_paths: Vec<regex::Regex>,
    accept_hosts: Vec<regex::Regex>,
    reject_methods: Vec<regex::Regex>,
}

/// `MakeRegexpArray`: an empty string is no expressions at all.
fn regexps(s: &str) -> Result<Vec<regex::Regex>, CmdError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|p| {
            regex::Regex::new(p).map_err(|e| CmdError::msg(format!("Error compiling re: {e}")))
        })
        .collect()
}

impl Filter {
    pub fn new(a: &ProxyArgs) -> Result<Filter, CmdError> {
        Ok(Filter {
            accept_paths: regexps(&a.accept_paths)?,
            reject_paths: regexps(&a.reject_paths)?,
            accept_hosts: regexps(&a.accept_hosts)?,
            reject_methods: regexps(&a.reject_methods)?,
        })
    }

    /// `FilterServer.accept`: not rejected by path or method, accepted by path and host.
    pub fn accept(&self, method: &str, path: &str, host: &str) -> bool {
        let any = |res: &[regex::Regex], s: &str| res.iter().any(|r| r.is_match(s));
        if any(&self.reject_paths, path) || any(&self.reject_methods, method) {
            return false;
        }
        any(&self.accept_paths, path) && any(&self.accept_hosts, host)
    }
}

/// `extractHost`: the Host header without its port.
fn host_of(header: &str) -> &str {
    if let Some(rest) = header.strip_prefix('[') {
        // [::1]:8001 → [::1] (as net.SplitHostPort leaves it, the brackets dropped).
        return match rest.split_once(']') {
            Some((h, port)) if port.starts_with(':') => h,
            _ => header,
        };
    }
    match header.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => header,
    }
}

struct Proxy {
    client: RestClient,
    filter: Option<Filter>,
    api_prefix: String,
    static_prefix: String,
    static_dir: Option<PathBuf>,
}

type Body =
    http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    r
}

pub async fn run(f: &mut Factory, mut a: ProxyArgs) -> CmdResult {
    if a.port != DEFAULT_PORT && a.unix_socket.is_some() {
        return Err(CmdError::msg(
            "cannot set --unix-socket and --port at the same time",
        ));
    }
    if !a.www_prefix.ends_with('/') {
        a.www_prefix.push('/');
    }
    if !a.api_prefix.ends_with('/') {
        a.api_prefix.push('/');
    }
    let client = f.client().await?;
    let server_path = client
        .server
        .parse::<http::Uri>()
        .ok()
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    if !server_path.is_empty() && server_path != "/" && !a.append_server_path {
        // Upstream then drops the server's path from every request; our client always
        // keeps it, so ask for the flag that says so rather than proxy differently.
        return Err(CmdError::msg(format!(
            "Your kube context contains a server path {server_path}, use --append-server-path to automatically append the path to each request"
        )));
    }
    let filter = if a.disable_filter {
        if a.unix_socket.is_none() {
            output::flush();
            cli_runtime::klog::line(
                'W',
                "proxy.go:177",
                "Request filter disabled, your proxy is vulnerable to XSRF attacks, please be cautious",
            );
        }
        None
    } else {
        Some(Filter::new(&a)?)
    };
    if let Some(dir) = &a.www {
        let warning = match std::fs::metadata(dir) {
            Err(e) => Some(format!(
                "Failed to stat static file directory {dir}: stat {dir}: {}",
                super::util::go_io_error(&e)
            )),
            Ok(m) if !m.is_dir() => Some(format!("Static file directory {dir} is not a directory")),
            Ok(_) => None,
        };
        if let Some(w) = warning {
            cli_runtime::klog::line('W', "proxy.go:193", &w);
        }
    }
    let proxy = Arc::new(Proxy {
        client,
        filter,
        api_prefix: a.api_prefix.clone(),
        static_prefix: a.www_prefix.clone(),
        static_dir: a.www.as_ref().map(PathBuf::from),
    });
    match &a.unix_socket {
        Some(path) => {
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|e| CmdError::msg(format!("listen unix {path}: {e}")))?;
            // Upstream binds under umask 0077: only its owner may connect.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            output::print(&format!("Starting to serve on {path}\n"));
            output::flush();
            let l = &listener;
            serve_forever(
                move || async move { l.accept().await.map(|(s, _)| s) },
                proxy,
            )
            .await
        }
        None => {
            let addr = format!("{}:{}", a.address, a.port);
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| CmdError::msg(format!("listen tcp {addr}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| CmdError::msg(e.to_string()))?;
            output::print(&format!("Starting to serve on {local}\n"));
            output::flush();
            let l = &listener;
            serve_forever(
                move || async move { l.accept().await.map(|(s, _)| s) },
                proxy,
            )
            .await
        }
    }
}

/// Every connection `accept` hands out, served on a task of its own.
async fn serve_forever<S, F>(mut accept: impl FnMut() -> F, proxy: Arc<Proxy>) -> CmdResult
where
    F: Future<Output = std::io::Result<S>>,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let stream = accept().await.map_err(|e| CmdError::msg(e.to_string()))?;
        serve(stream, proxy.clone());
    }
}

fn serve<S>(stream: S, proxy: Arc<Proxy>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, std::convert::Infallible>(proxy.handle(req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });
}

impl Proxy {
    /// The ServeMux: the static prefix (when serving files) wins over the API prefix
    /// as the longer pattern; anything else is Go's 404.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        if let Some(dir) = &self.static_dir
            && path.starts_with(&self.static_prefix)
            && self.static_prefix.len() >= self.api_prefix.len()
        {
            return serve_file(dir, &path[self.static_prefix.len()..]);
        }
        if !path.starts_with(&self.api_prefix) {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if let Some(filter) = &self.filter {
            let host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if !filter.accept(req.method().as_str(), &path, host_of(host)) {
                return text(StatusCode::FORBIDDEN, "Forbidden\n");
            }
        }
        // `stripLeaveSlash` for prefixes outside /api.
        let upstream_path = if self.api_prefix.starts_with("/api") {
            path.clone()
        } else {
            let rest = &path[self.api_prefix.len() - 1..];
            if rest.is_empty() || !rest.starts_with('/') {
                format!("/{rest}")
            } else {
                rest.to_string()
            }
        };
        let target = match req.uri().query() {
            Some(q) => format!("{upstream_path}?{q}"),
            None => upstream_path,
        };
        match self.forward(req, &target).await {
            Ok(r) => r,
            Err(e) => {
                output::flush();
                cli_runtime::klog::line(
                    'E',
                    "proxy_server.go:147",
                    &format!("Error while proxying request: {e}"),
                );
                text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n"))
            }
        }
    }

    /// The request with this kubectl's credentials (the client adds them), the answer
    /// streamed back, or both sides piped after `101 Switching Protocols`.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        target: &str,
    ) -> Result<Response<Body>, String> {
        let upgrade = req
            .headers()
            .get(hyper::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("upgrade"))
            });
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the request: {e}"))?
            .to_bytes();
        let mut out = Request::builder().method(parts.method).uri(target);
        for (k, v) in &parts.headers {
            // The client sets its own Host and credentials; hop-by-hop headers stay,
            // for an upgrade needs them.
            if k == hyper::header::HOST || k == hyper::header::AUTHORIZATION {
                continue;
            }
            out = out.header(k, v);
        }
        let out = out
            .body(kube::client::Body::from(body.to_vec()))
            .map_err(|e| e.to_string())?;
        let mut resp = self.client.send(out).await.map_err(|e| e.message())?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let (Ok(client), Ok(backend)) = (client_upgrade.await, backend_upgrade.await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(client),
                    &mut TokioIo::new(backend),
                )
                .await;
            });
            let (parts, _) = resp.into_parts();
            return Ok(Response::from_parts(
                parts,
                Full::new(Bytes::new())
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            ));
        }
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            parts,
            body.map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
                .boxed_unsync(),
        ))
    }
}

/// `http.FileServer` under the prefix: a file, a directory's `index.html`, or a
/// listing; nothing outside the directory.
fn serve_file(dir: &Path, rel: &str) -> Response<Body> {
    let mut path = dir.to_path_buf();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
            p => path.push(p),
        }
    }
    if path.is_dir() {
        let index = path.join("index.html");
        if index.is_file() {
            path = index;
        } else {
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .map(|it| {
                    it.filter_map(Result::ok)
                        .map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            if e.path().is_dir() {
                                format!("{n}/")
                            } else {
                                n
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            let mut html = String::from(
                "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
            );
            for n in names {
                html.push_str(&format!("<a href=\"{n}\">{n}</a>\n"));
            }
            html.push_str("</pre>\n");
            let mut r = text(StatusCode::OK, &html);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return r;
        }
    }
    match std::fs::read(&path) {
        Ok(bytes) => {
            let content_type = match path.extension().and_then(|e| e.to_str()) {
                Some("html" | "htm") => "text/html; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("json") => "application/json",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                Some("txt") => "text/plain; charset=utf-8",
                _ if std::str::from_utf8(&bytes).is_ok() => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            let mut r = Response::new(
                Full::new(Bytes::from(bytes))
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            );
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            r
        }
        Err(_) => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Filter {
        Filter {
            accept_paths: regexps(DEFAULT_PATH_ACCEPT_RE).unwrap(),
            reject_paths: regexps(DEFAULT_PATH_REJECT_RE).unwrap(),
            accept_hosts: regexps(DEFAULT_HOST_ACCEPT_RE).unwrap(),
            reject_methods: regexps(DEFAULT_METHOD_REJECT_RE).unwrap(),
        }
    }

    #[test]
    fn the_default_filter_is_upstreams() {
        let f = defaults();
        assert!(f.accept("GET", "/api/v1/pods", "localhost"));
        assert!(f.accept("GET", "/api/v1/pods", "127.0.0.1"));
        assert!(f.accept("GET", "/api/v1/pods", "[::1]"));
        assert!(!f.accept("GET", "/api/v1/pods", "evil.example.com"));
        assert!(!f.accept("POST", "/api/v1/namespaces/d/pods/p/exec", "localhost"));
        assert!(!f.accept("GET", "/api/v1/namespaces/d/pods/p/attach", "localhost"));
        assert!(f.accept(
            "POST",
            "/api/v1/namespaces/d/pods/p/portforward",
            "localhost"
        ));
        let mut no_posts = defaults();
        no_posts.reject_methods = regexps("POST,PUT").unwrap();
        assert!(!no_posts.accept("POST", "/api/v1/pods", "localhost"));
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_of("localhost:8001"), "localhost");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8001"), "::1");
    }
}
