//! cluster-dns: the cluster DNS add-on (the role CoreDNS's `kubernetes` plugin plays in
//! upstream clusters). Watches Services and EndpointSlices through the apiserver and
//! answers the cluster domain over UDP and TCP; kubelets point pods at it with
//! `--cluster-dns` (its Service IP, conventionally `kube-system/kube-dns`).

mod message;
mod records;

use clap::Parser;
use client_go::informer::Informer;
use component_base::logs::LoggingOptions;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves Kubernetes DNS records of the cluster domain from the API.
#[derive(Parser, Debug)]
#[command(name = "cluster-dns", version = "v1.35.0")]
struct Flags {
    /// Path to a kubeconfig file.
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// The cluster domain.
    #[arg(long = "cluster-domain", default_value = "cluster.local")]
    cluster_domain: String,
    /// Address to serve DNS on (UDP and TCP).
    #[arg(long = "listen", default_value = "0.0.0.0:53")]
    listen: String,
    #[command(flatten)]
    logging: LoggingOptions,
}

struct Server {
    domain: String,
    services: Arc<Informer<Service>>,
    slices: Arc<Informer<EndpointSlice>>,
}

impl Server {
    fn handle(&self, query: &[u8]) -> Option<Vec<u8>> {
        let Some((id, flags, q)) = message::parse_query(query) else {
            if query.len() >= 2 {
                let id = u16::from_be_bytes([query[0], query[1]]);
                return Some(message::response(id, 0, None, message::FORMERR, &[]));
            }
            return None;
        };
        // Only standard queries.
        if flags & 0x7800 != 0 {
            return Some(message::response(id, flags, Some(&q), message::NOTIMP, &[]));
        }
        let (services, slices) = (self.services.store.state(), self.slices.store.state());
        let zone = records::Zone {
            domain: &self.domain,
            services: &services,
            slices: &slices,
        };
        let (rcode, answers) = zone.answer(&q);
        Some(message::response(id, flags, Some(&q), rcode, &answers))
    }
}

async fn run(f: Flags) -> Result<(), String> {
    let agent = format!(
        "cluster-dns/v1.35.0 ({}/{})",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let client = client_go::rest::client(f.kubeconfig.as_deref(), &agent).await?;
    let services = Informer::new(Api::<Service>::all(client.clone()));
    let slices = Informer::new(Api::<EndpointSlice>::all(client));
    services.run();
    slices.run();
    let addr: std::net::SocketAddr = f
        .listen
        .parse()
        .map_err(|e| format!("invalid --listen {:?}: {e}", f.listen))?;
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|e| format!("listen udp {addr}: {e}"))?;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen tcp {addr}: {e}"))?;
    services.synced().await;
    slices.synced().await;
    tracing::info!(address = %addr, domain = f.cluster_domain, "serving DNS");
    let server = Arc::new(Server {
        domain: f.cluster_domain.clone(),
        services,
        slices,
    });
    let s = server.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = tcp.accept().await else {
                continue;
            };
            let s = s.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(len) = conn.read_u16().await else {
                        return;
                    };
                    let mut buf = vec![0u8; len as usize];
                    if conn.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let Some(resp) = s.handle(&buf) else { return };
                    if conn.write_u16(resp.len() as u16).await.is_err()
                        || conn.write_all(&resp).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                let Ok((n, peer)) = r else { continue };
                if let Some(mut resp) = server.handle(&buf[..n]) {
                    // Over 512 bytes: truncated, the client retries over TCP.
                    if resp.len() > 512 {
                        resp.truncate(12);
                        resp[2] |= 0x02;
                        resp[6..12].fill(0);
                    }
                    let _ = udp.send_to(&resp, peer).await;
                }
            }
            _ = component_base::signals::shutdown_signal() => return Ok(()),
        }
    }
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = run(flags).await {
        tracing::error!(error = %e, "cluster-dns failed");
        eprintln!("E: {e}");
        std::process::exit(1);
    }
}
