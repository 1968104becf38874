//! metrics-server: every `--metric-resolution` it scrapes each node's kubelet
//! (`/metrics/resource`) and serves the usage as `metrics.k8s.io/v1beta1` on its secure
//! port, behind the apiserver's aggregation, with delegated authentication and
//! authorization (upstream `kubernetes-sigs/metrics-server`, whose flags it takes).

mod api;
mod scraper;
mod storage;

use clap::Parser;
use component_base::logs::LoggingOptions;
use component_base::tls::Identity;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Scrapes resource metrics from kubelets and serves them as the Metrics API.
#[derive(Parser, Debug)]
#[command(name = "metrics-server", version = "v0.8.0")]
struct Flags {
    /// The path to the kubeconfig used to connect to the Kubernetes API server and the
    /// Kubelets (defaults to in-cluster config).
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// The resolution at which metrics-server will retain metrics, must set value at least 10s.
    #[arg(long = "metric-resolution", default_value = "15s")]
    metric_resolution: String,
    /// Do not verify CA of serving certificates presented by Kubelets. For testing purposes only.
    #[arg(long = "kubelet-insecure-tls", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    kubelet_insecure_tls: bool,
    /// The priority of node address types to use when determining which address to use to connect to a particular node.
    #[arg(
        long = "kubelet-preferred-address-types",
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    kubelet_preferred_address_types: Vec<String>,
    /// The port to use to connect to Kubelets.
    #[arg(long = "kubelet-port", default_value_t = 10250)]
    kubelet_port: u16,
    /// Use the port in the node status. Takes precedence over --kubelet-port flag.
    #[arg(long = "kubelet-use-node-status-port", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    kubelet_use_node_status_port: bool,
    /// Path to the CA to use to validate the Kubelet's serving certificates.
    #[arg(long = "kubelet-certificate-authority")]
    kubelet_certificate_authority: Option<PathBuf>,
    /// Path to a client cert file for TLS.
    #[arg(long = "kubelet-client-certificate")]
    kubelet_client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long = "kubelet-client-key")]
    kubelet_client_key: Option<PathBuf>,
    /// The timeout of each kubelet scrape (default: 90% of --metric-resolution).
    #[arg(long = "kubelet-request-timeout")]
    kubelet_request_timeout: Option<String>,
    #[command(flatten)]
    serving: client_go::secure::SecureServingFlags,
    #[command(flatten)]
    logging: LoggingOptions,
}

fn parse_duration(flag: &str, v: &str) -> Result<Duration, String> {
    apimachinery::duration::parse(v)
        .map_err(|e| format!("invalid argument {v:?} for \"--{flag}\" flag: {e}"))
}

/// The kubelet client's TLS and credentials: the flags, else the kubeconfig's (as
/// upstream takes the rest config's).
async fn kubelet_client(
    flags: &Flags,
    config: &kube::Config,
    resolution: Duration,
) -> Result<scraper::KubeletClient, String> {
    let roots = match &flags.kubelet_certificate_authority {
        Some(ca) => component_base::tls::load_roots(ca)?,
        None => config
            .root_cert
            .iter()
            .flatten()
            .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
            .collect(),
    };
    let identity = match (&flags.kubelet_client_certificate, &flags.kubelet_client_key) {
        (Some(c), Some(k)) => Some(component_base::tls::load_pem(c, k)?),
        (None, None) => kubeconfig_identity(config)?,
        _ => {
            return Err(
                "--kubelet-client-certificate and --kubelet-client-key must be given together"
                    .into(),
            );
        }
    };
    let token = match (&config.auth_info.token, &config.auth_info.token_file) {
        (Some(t), _) => Some(secret(t)),
        (None, Some(f)) => std::fs::read_to_string(f)
            .ok()
            .map(|t| t.trim().to_string()),
        (None, None) => None,
    };
    let timeout = match &flags.kubelet_request_timeout {
        Some(t) => parse_duration("kubelet-request-timeout", t)?,
        None => resolution.mul_f64(0.9),
    };
    Ok(scraper::KubeletClient {
        tls: component_base::tls::client(
            (!flags.kubelet_insecure_tls).then_some(roots.as_slice()),
            identity,
        )
        .map_err(|e| format!("kubelet TLS: {e}"))?,
        token,
        port: flags.kubelet_port,
        use_node_status_port: flags.kubelet_use_node_status_port,
        preferred_address_types: flags.kubelet_preferred_address_types.clone(),
        timeout,
    })
}

fn secret(s: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    s.expose_secret().to_string()
}

/// The client certificate the kubeconfig names, as files or inline data.
fn kubeconfig_identity(config: &kube::Config) -> Result<Option<Identity>, String> {
    use base64::Engine;
    let a = &config.auth_info;
    let read = |file: &Option<String>, data: Option<String>| -> Option<Vec<u8>> {
        match (file, data) {
            (Some(f), _) => std::fs::read(f).ok(),
            (None, Some(d)) => base64::engine::general_purpose::STANDARD.decode(d).ok(),
            _ => None,
        }
    };
    let cert = read(&a.client_certificate, a.client_certificate_data.clone());
    let key = read(&a.client_key, a.client_key_data.as_ref().map(secret));
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    let certs = rustls_pemfile::certs(&mut cert.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("client certificate: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key.as_slice())
        .map_err(|e| format!("client key: {e}"))?
        .ok_or("no private key in the kubeconfig")?;
    Ok(Some((certs, key)))
}

/// One collection: every node scraped at once, the pods' and nodes' labels refreshed.
async fn collect(
    client: &kube::Client,
    kubelets: &scraper::KubeletClient,
    state: &RwLock<api::State>,
) -> Result<(), String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing nodes: {e}"))?
        .items;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing pods: {e}"))?
        .items;
    let scrapes = futures::future::join_all(nodes.iter().map(|n| kubelets.scrape(n))).await;
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    let mut st = state.write().unwrap();
    for (node, scrape) in nodes.iter().zip(scrapes) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let on_node: Vec<storage::PodKey> = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
            .map(key)
            .collect();
        match scrape {
            Ok(batch) => st.storage.store(&name, batch, &on_node),
            Err(e) => tracing::error!(node = %name, error = %e, "Failed to scrape node"),
        }
    }
    let node_names: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let pod_keys: Vec<storage::PodKey> = pods.iter().map(key).collect();
    st.storage.retain(&node_names, &pod_keys);
    st.nodes = nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                n.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    st.pods = pods
        .iter()
        .map(|p| (key(p), p.metadata.labels.clone().unwrap_or_default()))
        .collect();
    Ok(())
}

async fn run(flags: Flags) -> Result<(), String> {
    let resolution = parse_duration("metric-resolution", &flags.metric_resolution)?;
    if resolution < Duration::from_secs(10) {
        return Err(
            "metric-resolution should be a time duration at least 10s, but value 5s provided"
                .replace("5s", &flags.metric_resolution),
        );
    }
    let agent = format!(
        "metrics-server/v0.8.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let config = client_go::rest::config(flags.kubeconfig.as_deref(), &agent).await?;
    let kubelets = kubelet_client(&flags, &config, resolution).await?;
    let client = client_go::rest::client(flags.kubeconfig.as_deref(), &agent).await?;
    let state = Arc::new(RwLock::new(api::State::default()));
    // Upstream's health checks: the last collection is recent enough, storage has data.
    let last_ok = Arc::new(AtomicI64::new(jiff::Timestamp::now().as_second()));
    let (timely, ready_state) = (last_ok.clone(), state.clone());
    let stale_after = (resolution.as_secs() as i64) * 3 / 2 + 1;
    let endpoints = component_base::serving::Endpoints {
        authorizer: None,
        api: Some(Arc::new(api::MetricsApi {
            state: state.clone(),
        })),
        live: vec![(
            "metric-collection-timely".into(),
            Arc::new(move || {
                let age = jiff::Timestamp::now().as_second() - timely.load(Ordering::Relaxed);
                match age <= stale_after * 2 {
                    true => Ok(()),
                    false => Err(format!(
                        "metric collection didn't finish on time: {age}s ago"
                    )),
                }
            }),
        )],
        ready: vec![(
            "metric-storage-ready".into(),
            Arc::new(move || match ready_state.read().unwrap().storage.ready() {
                true => Ok(()),
                false => Err("no metrics to serve".into()),
            }),
        )],
        metrics: Arc::new(|| (String::new(), "text/plain; version=0.0.4; charset=utf-8")),
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    flags
        .serving
        .serve(10250, "apiserver", &agent, endpoints, async move {
            let _ = stop_rx.changed().await;
        })
        .await?;
    let mut tick = tokio::time::interval(resolution);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = component_base::signals::shutdown_signal() => break,
        }
        match collect(&client, &kubelets, &state).await {
            Ok(()) => last_ok.store(jiff::Timestamp::now().as_second(), Ordering::Relaxed),
            Err(e) => tracing::error!(error = %e, "collecting metrics"),
        }
    }
    let _ = stop_tx.send(true);
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut flags = Flags::parse();
    // The generic apiserver's default (the control-plane components tolerate a failed
    // lookup; an extension API server without the front proxy's settings cannot work).
    if !std::env::args().any(|a| a.starts_with("--authentication-tolerate-lookup-failure")) {
        flags.serving.authentication_tolerate_lookup_failure = false;
    }
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("metrics-server", run(flags).await);
}
