//! An in-process kube-apiserver (upstream `cmd/kube-apiserver/app/testing`).
//!
//! The server runs on a thread and Tokio runtime of its own, so one server outlives the
//! per-test runtimes of `#[tokio::test]` and a whole test binary can share it
//! ([`TestServer::shared`]); tests isolate themselves by namespace.

use controlplane::config::{Config, RequestHeaderConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct TestServer {
    pub port: u16,
    /// The CA that signed the serving certificate.
    pub ca_pem: String,
    /// The store and certificates; removed once the server has stopped.
    pub dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// One server for the whole test binary, started on first use.
    pub fn shared() -> &'static TestServer {
        static SHARED: OnceLock<TestServer> = OnceLock::new();
        SHARED.get_or_init(|| TestServer::start_with(|_| {}))
    }

    /// A server of its own, with the test defaults changed by `configure` (e.g. a small
    /// watch cache). Blocks until `/readyz` answers ok.
    pub fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(remove_stale_dirs);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        let ca_pem = serving_certs(&dir);
        let mut cfg = test_config(&dir, port);
        configure(&mut cfg);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
        let probe = client_config(&format!("https://127.0.0.1:{port}"), &ca_pem);
        std::thread::Builder::new()
            .name(format!("kube-apiserver-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    let server = controlplane::run(cfg, shutdown);
                    tokio::pin!(server);
                    // A server that fails to start (a port taken) says so at once.
                    let ended = tokio::select! {
                        ready = wait_ready(probe) => {
                            let _ = ready_tx.send(ready);
                            server.await
                        }
                        ended = &mut server => ended,
                    };
                    if let Err(e) = ended {
                        let _ =
                            ready_tx.send(Err(format!("in-process kube-apiserver failed: {e}")));
                        eprintln!("in-process kube-apiserver failed: {e}");
                    }
                });
                drop(tmp);
            })
            .expect("apiserver thread");
        let server = TestServer {
            port,
            ca_pem,
            dir,
            stop: Some(stop),
        };
        match ready.recv() {
            Ok(Ok(())) => server,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("in-process kube-apiserver exited before it was ready"),
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A client of the server (anonymous, which the test authorizer allows everything),
    /// bound to the caller's runtime.
    pub fn client(&self) -> kube::Client {
        self.client_at(&self.url())
    }

    /// A client trusting the server's CA at another address (a relay in front of it).
    pub fn client_at(&self, url: &str) -> kube::Client {
        kube::Client::try_from(client_config(url, &self.ca_pem)).expect("client")
    }
}

fn client_config(url: &str, ca_pem: &str) -> kube::Config {
    let mut cfg = kube::Config::new(url.parse().expect("url"));
    let mut pem = ca_pem.as_bytes();
    cfg.root_cert = Some(
        rustls_pemfile::certs(&mut pem)
            .map(|c| c.expect("CA certificate").to_vec())
            .collect(),
    );
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg
}

/// Polls `/readyz` until it answers ok.
async fn wait_ready(cfg: kube::Config) -> Result<(), String> {
    let client = kube::Client::try_from(cfg).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.request_text(http_get("/readyz")).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err("in-process kube-apiserver not ready after 60s".into());
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Stops the server without waiting: its graceful shutdown waits for clients whose
/// connections may live on the very runtime that would block here. The server's thread
/// removes its directory once stopped.
impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

const DIR_PREFIX: &str = "test-apiserver-";

/// Directories of test servers whose process is gone (the shared server is never
/// dropped, and a test binary may exit before a stopped server's thread cleans up).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn http_get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .uri(path)
        .body(Vec::new())
        .expect("request")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A CA and a serving certificate it signs for 127.0.0.1 (a self-signed leaf is not a
/// trust anchor to rustls); returns the CA's PEM.
fn serving_certs(dir: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test-apiserver-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("serving certificate");
    std::fs::write(dir.join("apiserver.crt"), leaf.pem()).expect("write");
    std::fs::write(dir.join("apiserver.key"), key.serialize_pem()).expect("write");
    ca_cert.pem()
}

/// The flags' defaults, as upstream's test server sets them: loopback, the embedded
/// store, everyone allowed, and no ServiceAccount admission (no controller creates the
/// `default` accounts).
fn test_config(dir: &Path, port: u16) -> Config {
    let p = |f: &str| -> PathBuf { dir.join(f) };
    Config {
        etcd_servers: Vec::new(),
        etcd_prefix: "/registry".into(),
        etcd_cafile: None,
        etcd_certfile: None,
        etcd_keyfile: None,
        etcd_compaction_interval: Duration::from_secs(300),
        storage_protobuf: false,
        data_dir: p("data"),
        bind_address: [127, 0, 0, 1].into(),
        secure_port: port,
        advertise_address: None,
        cert_dir: p("certs"),
        tls_cert_file: Some(p("apiserver.crt")),
        tls_private_key_file: Some(p("apiserver.key")),
        service_cluster_ip_range: "10.0.0.0/24".into(),
        service_node_port_range: "30000-32767".into(),
        watch_cache: true,
        default_watch_cache_size: 100,
        max_requests_inflight: 0,
        max_mutating_requests_inflight: 0,
        enable_priority_and_fairness: false,
        client_ca_file: None,
        token_auth_file: None,
        request_header: RequestHeaderConfig::default(),
        anonymous_auth: true,
        endpoint_reconciler_type: "none".into(),
        enable_bootstrap_token_auth: false,
        authorization_modes: vec!["AlwaysAllow".into()],
        enable_admission_plugins: Vec::new(),
        disable_admission_plugins: vec!["ServiceAccount".into()],
        encryption_provider_config: None,
        audit_policy_file: None,
        audit_log_path: None,
        audit_log_rotation: apiserver::audit::log::Rotation {
            max_size_mb: 0,
            max_backups: 0,
            max_age_days: 0,
        },
        service_account_issuers: Vec::new(),
        service_account_key_files: Vec::new(),
        service_account_signing_key_file: None,
        api_audiences: Vec::new(),
        service_account_max_token_expiration: Duration::ZERO,
        service_account_extend_token_expiration: true,
        allow_privileged: true,
        kubelet_preferred_address_types: Vec::new(),
        kubelet_client_certificate: None,
        kubelet_certificate_authority: None,
        proxy_client_certificate: None,
        enable_aggregator_routing: false,
    }
}
