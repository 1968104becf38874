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
    /// Where names outside the cluster domain go (comma-separated ip[:port]); default:
    /// the nameservers of /etc/resolv.conf; `none` answers them REFUSED.
    #[arg(long = "forward")]
    forward: Option<String>,
    #[command(flatten)]
    logging: LoggingOptions,
}

struct Server {
    domain: String,
    forward: Vec<std::net::SocketAddr>,
    services: Arc<Informer<Service>>,
    slices: Arc<Informer<EndpointSlice>>,
}

impl Server {
    async fn handle(&self, query: &[u8]) -> Option<Vec<u8>> {
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
        let (rcode, answers) = {
            let (services, slices) = (self.services.store.state(), self.slices.store.state());
            let zone = records::Zone {
                domain: &self.domain,
                services: &services,
                slices: &slices,
            };
            zone.answer(&q)
        };
        if rcode == message::REFUSED && !self.forward.is_empty() {
            return Some(match relay(query, &self.forward).await {
                Some(r) => r,
                None => message::response(id, flags, Some(&q), message::SERVFAIL, &[]),
            });
        }
        Some(message::response(id, flags, Some(&q), rcode, &answers))
    }
}

/// Relays a query outside the cluster domain to the upstream resolvers (as CoreDNS's
/// `forward . /etc/resolv.conf`), each tried for 2 s.
async fn relay(query: &[u8], upstreams: &[std::net::SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(std::time::Duration::from_secs(2), sock.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// `--forward`, or the nameservers of /etc/resolv.conf.
fn forwarders(flag: Option<&str>) -> Result<Vec<std::net::SocketAddr>, String> {
    let text = match flag {
        Some("none") => return Ok(Vec::new()),
        Some(list) => list.replace(',', " "),
        None => std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect::<Vec<_>>()
            .join(" "),
    };
    text.split_whitespace()
        .map(|a| {
            a.parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    a.parse::<std::net::IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, 53))
                })
                .map_err(|_| format!("invalid forward address {a:?}"))
        })
        .collect()
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
    let udp = Arc::new(
        tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("listen udp {addr}: {e}"))?,
    );
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen tcp {addr}: {e}"))?;
    services.synced().await;
    slices.synced().await;
    tracing::info!(address = %addr, domain = f.cluster_domain, "serving DNS");
    let forward = forwarders(f.forward.as_deref())?;
    let server = Arc::new(Server {
        domain: f.cluster_domain.clone(),
        forward,
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
                    let Some(resp) = s.handle(&buf).await else {
                        return;
                    };
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
                let (server, udp, query) = (server.clone(), udp.clone(), buf[..n].to_vec());
                tokio::spawn(async move {
                    if let Some(mut resp) = server.handle(&query).await {
                        // Over 512 bytes: truncated, the client retries over TCP.
                        if resp.len() > 512 {
                            resp.truncate(12);
                            resp[2] |= 0x02;
                            resp[6..12].fill(0);
                        }
                        let _ = udp.send_to(&resp, peer).await;
                    }
                });
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
    component_base::exit_on_error("cluster-dns", run(flags).await);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarders_parse() {
        assert!(forwarders(Some("none")).unwrap().is_empty());
        let f = forwarders(Some("10.0.0.1,127.0.0.1:5353")).unwrap();
        assert_eq!(f[0].port(), 53);
        assert_eq!(f[1].port(), 5353);
        assert!(forwarders(Some("bogus")).is_err());
    }

    #[tokio::test]
    async fn relays_to_upstream() {
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, peer) = up.recv_from(&mut buf).await.unwrap();
            let mut resp = buf[..n].to_vec();
            resp[2] |= 0x80;
            up.send_to(&resp, peer).await.unwrap();
        });
        let q = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
        ];
        let r = relay(&q, &[addr]).await.unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80);
    }
}
