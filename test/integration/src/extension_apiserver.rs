//! An extension API server written for the aggregation tests, doing what a real one
//! (sample-apiserver, metrics-server) must: TLS with a certificate for
//! `<service>.<namespace>.svc` from its own CA, delegated authentication (only a front
//! proxy whose client certificate chains to the request-header CA and carries an allowed
//! name may name the user, in `X-Remote-*` headers) and delegated authorization (a
//! SubjectAccessReview to the cluster's apiserver per request). It serves
//! `wardle.example.com/v1alpha1` with one namespaced resource, `flunders`: a list whose
//! one item records who asked, and a watch that streams an event at once and another a
//! moment later.

use crate::client::Client;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const GROUP: &str = "wardle.example.com";
pub const VERSION: &str = "v1alpha1";

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;
/// Every authenticated user: (name, groups).
pub type Seen = Arc<Mutex<Vec<(String, Vec<String>)>>>;

pub struct ExtensionServer {
    pub port: u16,
    /// The CA that signed the serving certificate (the APIService's `caBundle`).
    pub ca_pem: String,
    pub seen: Seen,
    /// SubjectAccessReviews asked.
    pub reviews: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ExtensionServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Ctx {
    front_proxy: component_base::authentication::RequestHeader,
    apiserver: Client,
    seen: Seen,
    reviews: Arc<Mutex<usize>>,
}

fn full(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(v.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    full(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}),
    )
}

fn flunder(name: &str, ns: &str, user: &str, groups: &[String]) -> Value {
    json!({"apiVersion": format!("{GROUP}/{VERSION}"), "kind": "Flunder",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
        "spec": {"requestedBy": user, "requestedByGroups": groups}})
}

/// Starts on a loopback port, trusting front proxies from `front_proxy_ca` named
/// `front-proxy-client`, reviewing access with `apiserver`.
pub async fn start(front_proxy_ca: &Path, apiserver: Client, service_dns: &str) -> ExtensionServer {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wardle-ca");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![service_dns.to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let roots = component_base::tls::load_roots(front_proxy_ca).unwrap();
    let verifier = component_base::x509_verify::ClientCaVerifier::new(&roots).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(Arc::new(component_base::x509_verify::RequestClientCert(
        component_base::x509_verify::ClientCaVerifier::new(&roots).unwrap(),
    )))
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reviews = Arc::new(Mutex::new(0));
    let ctx = Arc::new(Ctx {
        front_proxy: component_base::authentication::RequestHeader {
            verifier: Arc::new(verifier),
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec!["X-Remote-Uid".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefix: vec!["X-Remote-Extra-".into()],
        },
        apiserver,
        seen: seen.clone(),
        reviews: reviews.clone(),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, ctx) = (acceptor.clone(), ctx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let chain: Vec<CertificateDer<'static>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect();
                let chain = Arc::new(chain);
                let service = hyper::service::service_fn(move |req| {
                    let (ctx, chain) = (ctx.clone(), chain.clone());
                    async move { Ok::<_, std::convert::Infallible>(serve(&ctx, &chain, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    ExtensionServer {
        port,
        ca_pem: ca.pem(),
        seen,
        reviews,
        task,
    }
}

async fn serve(
    ctx: &Ctx,
    chain: &[CertificateDer<'static>],
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    // Delegated authentication: only the front proxy names users.
    let user = match ctx.front_proxy.authenticate(chain, req.headers()) {
        Ok(Some(u)) => u,
        _ => return status(401, "Unauthorized", "Unauthorized"),
    };
    let mut groups = user.groups.clone();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    ctx.seen
        .lock()
        .unwrap()
        .push((user.name.clone(), groups.clone()));
    let path = req.uri().path().to_string();
    let watch = req.uri().query().unwrap_or_default().contains("watch=true");
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Delegated authorization: the cluster's apiserver decides.
    let attrs = match segs.as_slice() {
        ["apis", GROUP, VERSION, "namespaces", ns, "flunders"] => json!({"resourceAttributes": {
            "verb": if watch { "watch" } else { "list" }, "group": GROUP, "version": VERSION,
            "resource": "flunders", "namespace": ns}}),
        _ => json!({"nonResourceAttributes": {"verb": "get", "path": path}}),
    };
    let mut spec = attrs;
    spec["user"] = json!(user.name);
    spec["groups"] = json!(groups);
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec});
    *ctx.reviews.lock().unwrap() += 1;
    let r = ctx
        .apiserver
        .send_json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &review,
        )
        .await;
    if r.json()["status"]["allowed"] != true {
        return status(403, "Forbidden", &format!("{} may not {path}", user.name));
    }
    match segs.as_slice() {
        ["apis", GROUP, VERSION] => full(
            200,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
                "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": true, "kind": "Flunder",
                    "verbs": ["get", "list", "watch"], "shortNames": ["fl"]}]}),
        ),
        ["apis", GROUP, VERSION, "namespaces", ns, "flunders"] if watch => {
            let first = json!({"type": "ADDED", "object": flunder("one", ns, &user.name, &groups)});
            let second =
                json!({"type": "ADDED", "object": flunder("two", ns, &user.name, &groups)});
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
            tokio::spawn(async move {
                let line = |v: &Value| Ok(Frame::data(Bytes::from(format!("{v}\n"))));
                let _ = tx.send(line(&first)).await;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let _ = tx.send(line(&second)).await;
                // Open until the client goes.
                tx.closed().await;
            });
            let stream =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
                );
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(StreamBody::new(stream).boxed_unsync())
                .unwrap()
        }
        ["apis", GROUP, VERSION, "namespaces", ns, "flunders"] => full(
            200,
            &json!({"apiVersion": format!("{GROUP}/{VERSION}"), "kind": "FlunderList", "metadata": {"resourceVersion": "1"},
                "items": [flunder("one", ns, &user.name, &groups)]}),
        ),
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}
