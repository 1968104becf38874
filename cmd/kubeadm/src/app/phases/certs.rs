//! `kubeadm init phase certs` (upstream `cmd/kubeadm/app/phases/certs`): the cluster CA,
//! the front-proxy CA and (stacked etcd) the etcd CA, valid `caCertificateValidityPeriod`
//! (10 years); the leaf certificates they sign, valid `certificateValidityPeriod` (1 year);
//! and the service-account key pair. Existing files are kept, as upstream's.

use crate::app::apis::kubeadm::InitConfig;
use crate::app::util::pkiutil::{self, CertSpec};
use std::net::IpAddr;
use std::path::Path;

/// A certificate kubeadm manages: its file base name under the cert dir, the CA that
/// signs it (None for a CA) and how to fill it in from the configuration.
pub struct KubeadmCert {
    pub name: &'static str,
    pub base: &'static str,
    pub ca: Option<&'static str>,
    spec: fn(&InitConfig, &str) -> Result<CertSpec, String>,
}

/// The first address of the service subnet: the `kubernetes` Service's cluster IP.
pub fn api_server_service_ip(subnet: &str) -> Result<IpAddr, String> {
    nth_service_ip(subnet, 1)
}

/// The `n`th address of the (first) service subnet (the 10th is the cluster DNS's).
pub fn nth_service_ip(subnet: &str, n: u32) -> Result<IpAddr, String> {
    let first = subnet.split(',').next().unwrap_or_default();
    let (ip, _) = first
        .split_once('/')
        .ok_or_else(|| format!("serviceSubnet {subnet:?} is not a CIDR"))?;
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Ok(IpAddr::V4((u32::from(v4) + n).into())),
        Ok(IpAddr::V6(v6)) => Ok(IpAddr::V6((u128::from(v6) + u128::from(n)).into())),
        Err(_) => Err(format!("serviceSubnet {subnet:?} is not a CIDR")),
    }
}

fn ca(cn: &'static str) -> fn(&InitConfig, &str) -> Result<CertSpec, String> {
    match cn {
        "kubernetes" => |_, _| Ok(named("kubernetes")),
        "front-proxy-ca" => |_, _| Ok(named("front-proxy-ca")),
        _ => |_, _| Ok(named("etcd-ca")),
    }
}

fn named(cn: &str) -> CertSpec {
    CertSpec {
        common_name: cn.into(),
        ..Default::default()
    }
}

fn client(cn: &str, orgs: &[&str]) -> CertSpec {
    CertSpec {
        common_name: cn.into(),
        organizations: orgs.iter().map(|o| o.to_string()).collect(),
        client: true,
        ..Default::default()
    }
}

fn advertise(cfg: &InitConfig) -> Result<IpAddr, String> {
    let a = &cfg.init.local_api_endpoint.advertise_address;
    a.parse()
        .map_err(|_| format!("localAPIEndpoint.advertiseAddress {a:?} is not an IP address"))
}

/// Upstream's `GetAPIServerAltNames`.
fn apiserver(cfg: &InitConfig, node: &str) -> Result<CertSpec, String> {
    let domain = &cfg.cluster.networking.dns_domain;
    let mut dns = vec![
        "kubernetes".to_string(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{domain}"),
        node.to_string(),
    ];
    let mut ips = vec![
        api_server_service_ip(&cfg.cluster.networking.service_subnet)?,
        advertise(cfg)?,
    ];
    let endpoint_host = cfg
        .cluster
        .control_plane_endpoint
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&cfg.cluster.control_plane_endpoint)
        .trim_matches(['[', ']']);
    for extra in std::iter::once(endpoint_host)
        .chain(cfg.cluster.api_server.cert_sans.iter().map(String::as_str))
    {
        if extra.is_empty() {
            continue;
        }
        match extra.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.iter().any(|d| d == extra) => dns.push(extra.to_string()),
            Err(_) => {}
        }
    }
    Ok(CertSpec {
        common_name: "kube-apiserver".into(),
        dns_names: dns,
        ips,
        server: true,
        ..Default::default()
    })
}

/// Upstream's `GetEtcdAltNames` / `GetEtcdPeerAltNames`; `sans` picks the extra names
/// from the local etcd configuration.
fn etcd_serving(
    cfg: &InitConfig,
    node: &str,
    sans: fn(&crate::app::apis::kubeadm::LocalEtcd) -> &Vec<String>,
) -> Result<CertSpec, String> {
    let local = cfg.cluster.etcd.local.clone().unwrap_or_default();
    let extra = sans(&local);
    let mut dns = vec!["localhost".to_string(), node.to_string()];
    let mut ips: Vec<IpAddr> = vec![
        advertise(cfg)?,
        "127.0.0.1".parse().unwrap(),
        "::1".parse().unwrap(),
    ];
    for e in extra {
        match e.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(e.clone()),
        }
    }
    Ok(CertSpec {
        common_name: node.into(),
        dns_names: dns,
        ips,
        server: true,
        client: true,
        ..Default::default()
    })
}

/// Every certificate `kubeadm init` creates, in upstream's order.
pub fn certificates(cfg: &InitConfig) -> Vec<KubeadmCert> {
    let mut list = vec![
        KubeadmCert {
            name: "ca",
            base: "ca",
            ca: None,
            spec: ca("kubernetes"),
        },
        KubeadmCert {
            name: "apiserver",
            base: "apiserver",
            ca: Some("ca"),
            spec: apiserver,
        },
        KubeadmCert {
            name: "apiserver-kubelet-client",
            base: "apiserver-kubelet-client",
            ca: Some("ca"),
            spec: |_, _| {
                Ok(client(
                    "kube-apiserver-kubelet-client",
                    &["kubeadm:cluster-admins"],
                ))
            },
        },
        KubeadmCert {
            name: "front-proxy-ca",
            base: "front-proxy-ca",
            ca: None,
            spec: ca("front-proxy-ca"),
        },
        KubeadmCert {
            name: "front-proxy-client",
            base: "front-proxy-client",
            ca: Some("front-proxy-ca"),
            spec: |_, _| Ok(client("front-proxy-client", &[])),
        },
    ];
    if cfg.local_etcd() {
        list.extend([
            KubeadmCert {
                name: "etcd-ca",
                base: "etcd/ca",
                ca: None,
                spec: ca("etcd-ca"),
            },
            KubeadmCert {
                name: "etcd-server",
                base: "etcd/server",
                ca: Some("etcd/ca"),
                spec: |cfg, node| etcd_serving(cfg, node, |l| &l.server_cert_sans),
            },
            KubeadmCert {
                name: "etcd-peer",
                base: "etcd/peer",
                ca: Some("etcd/ca"),
                spec: |cfg, node| etcd_serving(cfg, node, |l| &l.peer_cert_sans),
            },
            KubeadmCert {
                name: "etcd-healthcheck-client",
                base: "etcd/healthcheck-client",
                ca: Some("etcd/ca"),
                spec: |_, _| Ok(client("kube-etcd-healthcheck-client", &[])),
            },
            KubeadmCert {
                name: "apiserver-etcd-client",
                base: "apiserver-etcd-client",
                ca: Some("etcd/ca"),
                spec: |_, _| Ok(client("kube-apiserver-etcd-client", &[])),
            },
        ]);
    }
    list
}

/// Creates one certificate (and its key) unless it exists; its CA must exist.
pub fn create(cfg: &InitConfig, node: &str, dir: &Path, c: &KubeadmCert) -> Result<(), String> {
    let crt = pkiutil::cert_path(dir, c.base);
    if crt.exists() && pkiutil::key_path(dir, c.base).exists() {
        let (pem, _) = pkiutil::read_pair(dir, c.base)?;
        let info = pkiutil::info(&pem)?;
        let now = jiff::Timestamp::now().as_second();
        if now < info.not_before || now >= info.not_after {
            return Err(format!(
                "certificate {} is not valid now: renew it with 'kubeadm certs renew'",
                c.base
            ));
        }
        if c.ca.is_none() && !info.is_ca {
            return Err(format!(
                "certificate {} is not a certificate authority",
                c.base
            ));
        }
        match c.ca {
            None => println!("[certs] Using existing {} certificate authority", c.base),
            Some(_) => println!(
                "[certs] Using existing {} certificate and key on disk",
                c.base
            ),
        }
        return Ok(());
    }
    println!("[certs] Generating \"{}\" certificate and key", c.base);
    let spec = (c.spec)(cfg, node)?;
    let key = pkiutil::generate_key(&cfg.cluster.encryption_algorithm)?;
    let pem = match c.ca {
        None => pkiutil::new_ca(&spec.common_name, cfg.ca_validity(), &key)?,
        Some(ca) => {
            let (ca_pem, ca_key) = pkiutil::read_pair(dir, ca)
                .map_err(|e| format!("couldn't load the {ca} certificate authority: {e}"))?;
            if spec.server {
                let ips: Vec<String> = spec.ips.iter().map(|i| i.to_string()).collect();
                println!(
                    "[certs] {} serving cert is signed for DNS names [{}] and IPs [{}]",
                    c.base,
                    spec.dns_names.join(" "),
                    ips.join(" ")
                );
            }
            pkiutil::new_signed(&spec, cfg.cert_validity(), &key, &ca_pem, &ca_key)?
        }
    };
    pkiutil::write_pair(dir, c.base, &pem, &key)
}

/// The service-account signing key pair `sa.key`/`sa.pub`.
pub fn create_service_account_keys(cfg: &InitConfig, dir: &Path) -> Result<(), String> {
    let (key, public) = (dir.join("sa.key"), dir.join("sa.pub"));
    if key.exists() && public.exists() {
        println!("[certs] Using the existing \"sa\" key");
        return Ok(());
    }
    println!("[certs] Generating \"sa\" key and public key");
    let k = pkiutil::generate_key(&cfg.cluster.encryption_algorithm)?;
    pkiutil::write_file(&key, &k.serialize_pem(), 0o600)?;
    pkiutil::write_file(&public, &k.public_key_pem(), 0o644)
}

/// `kubeadm init phase certs all`.
pub fn create_all(cfg: &InitConfig, node: &str, dir: &Path) -> Result<(), String> {
    println!(
        "[certs] Using certificateDir folder {:?}",
        dir.display().to_string()
    );
    for c in certificates(cfg) {
        create(cfg, node, dir, &c)?;
    }
    create_service_account_keys(cfg, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_ip_is_the_subnets_first() {
        assert_eq!(
            api_server_service_ip("10.96.0.0/12").unwrap().to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            api_server_service_ip("fd00::/108").unwrap().to_string(),
            "fd00::1"
        );
        assert!(api_server_service_ip("nonsense").is_err());
    }

    #[test]
    fn all_certificates_chain_to_their_cas() {
        let mut cfg = InitConfig::default();
        cfg.init.local_api_endpoint.advertise_address = "10.0.0.5".into();
        cfg.cluster.encryption_algorithm = "ECDSA-P256".into();
        cfg.cluster.api_server.cert_sans = vec!["api.example".into(), "192.0.2.7".into()];
        let dir = tempfile::tempdir().unwrap();
        create_all(&cfg, "node1", dir.path()).unwrap();
        for c in certificates(&cfg) {
            let (pem, _) = pkiutil::read_pair(dir.path(), c.base).unwrap();
            let info = pkiutil::info(&pem).unwrap();
            let days = (info.not_after - info.not_before) / 86400;
            match c.ca {
                None => assert_eq!(days, 3650, "{}", c.name),
                Some(_) => assert_eq!(days, 365, "{}", c.name),
            }
        }
        let (api, _) = pkiutil::read_pair(dir.path(), "apiserver").unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(api.as_bytes()).unwrap();
        let cert = p.parse_x509().unwrap();
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name().unwrap().unwrap().value
        );
        for want in [
            "kubernetes.default.svc.cluster.local",
            "node1",
            "api.example",
            "10.96.0.1",
            "192.0.2.7",
            "10.0.0.5",
        ] {
            assert!(
                sans.contains(want)
                    || sans.contains(&format!(
                        "{:?}",
                        want.parse::<IpAddr>()
                            .map(|i| i.to_string())
                            .unwrap_or_default()
                    ))
                    || sans_has_ip(&sans, want),
                "{want}: {sans}"
            );
        }
        assert!(dir.path().join("sa.key").exists() && dir.path().join("sa.pub").exists());
        // A second run keeps what exists.
        let before = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
        create_all(&cfg, "node1", dir.path()).unwrap();
        assert_eq!(
            before,
            std::fs::read_to_string(dir.path().join("ca.crt")).unwrap()
        );
    }

    fn sans_has_ip(sans: &str, want: &str) -> bool {
        match want.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => {
                let o = ip.octets();
                sans.contains(&format!("[{}, {}, {}, {}]", o[0], o[1], o[2], o[3]))
            }
            Err(_) => false,
        }
    }
}
