//! `kubeadm join` for a worker node (upstream `cmd/kubeadm/app/cmd/join.go`,
//! `discovery/token` and `phases/kubelet`): token discovery — `kube-public/cluster-info`
//! read anonymously, its kubeconfig checked against the token's JWS signature and the
//! cluster CA against `--discovery-token-ca-cert-hash`, then read again over TLS
//! verified with that CA — then the bootstrap kubeconfig, the kubelet's configuration
//! from the `kubelet-config` ConfigMap, the kubelet (re)started through the init system,
//! and the wait for its health and TLS bootstrap.

use crate::app::apis::kubeadm::{DEFAULT_CERT_DIR, KUBERNETES_DIR};
use crate::app::cmd::token;
use crate::app::phases::kubelet;
use crate::app::util::pkiutil;
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::Api;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct JoinOptions {
    pub endpoint: String,
    pub token: String,
    pub ca_cert_hashes: Vec<String>,
    pub unsafe_skip_ca_verification: bool,
    pub node_name: String,
    pub cri_socket: String,
    pub discovery_timeout: Duration,
    pub tls_bootstrap_timeout: Duration,
    /// `--control-plane`: a new control-plane instance on this node.
    pub control_plane: Option<crate::app::cmd::joincontrolplane::ControlPlaneJoin>,
    pub ignore_preflight_errors: Vec<String>,
}

/// The first, unverified read of cluster-info (`ca_pem` None) is trusted only once the
/// token's signature and the CA pin check out.
fn anonymous_client(server: &str, ca_pem: Option<&str>) -> Result<kube::Client, String> {
    let cfg = crate::app::util::apiclient::anonymous_config(server, ca_pem)?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

/// The cluster's server URL and CA, as cluster-info states them once verified.
pub async fn discover(o: &JoinOptions) -> Result<(String, String), String> {
    let (id, secret) = token::parse(&o.token)?;
    if o.ca_cert_hashes.is_empty() && !o.unsafe_skip_ca_verification {
        return Err("discovery.bootstrapToken: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue".into());
    }
    let endpoint = format!("https://{}", o.endpoint.trim_start_matches("https://"));
    let deadline = Instant::now() + o.discovery_timeout;
    let insecure = anonymous_client(&endpoint, None)?;
    let kubeconfig = loop {
        let err = match Api::<ConfigMap>::namespaced(insecure.clone(), "kube-public")
            .get("cluster-info")
            .await
        {
            Ok(cm) => {
                let data = cm.data.unwrap_or_default();
                let kc = data.get("kubeconfig").cloned().unwrap_or_default();
                match data.get(&format!("jws-kubeconfig-{id}")) {
                    Some(jws) if client_go::bootstrap_jws::detached_jws_is_valid(jws, &kc, id, secret) => {
                        break kc;
                    }
                    Some(_) => "failed to verify JWS signature of received cluster info object, can't trust this API Server".to_string(),
                    None => format!("token id {id:?} is invalid for this cluster or it has expired. Use \"kubeadm token create\" on the control-plane node to create a new valid token"),
                }
            }
            Err(e) => format!("failed to request the cluster-info ConfigMap: {e}"),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "couldn't validate the identity of the API Server: {err}"
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig).map_err(|e| {
        format!("couldn't parse the kubeconfig file in the cluster-info ConfigMap: {e}")
    })?;
    let cluster = parsed
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or("the kubeconfig in the cluster-info ConfigMap has no cluster")?;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            cluster
                .certificate_authority_data
                .clone()
                .unwrap_or_default()
                .trim(),
        )
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the kubeconfig in the cluster-info ConfigMap has no certificate authority data")?;
    if !o.unsafe_skip_ca_verification {
        let hash = token::ca_cert_hash(&ca)?;
        if !o
            .ca_cert_hashes
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&hash))
        {
            return Err(format!(
                "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys {hash:?} are pinned"
            ));
        }
    }
    // Read again over TLS verified with the CA: the server we talk to holds its key.
    let secure = anonymous_client(&endpoint, Some(&ca))?;
    let again = Api::<ConfigMap>::namespaced(secure, "kube-public")
        .get("cluster-info")
        .await
        .map_err(|e| format!("failed to read cluster-info over a verified connection: {e}"))?;
    if again.data.unwrap_or_default().get("kubeconfig") != Some(&kubeconfig) {
        return Err("the cluster-info ConfigMap changed while it was read".into());
    }
    Ok((cluster.server.unwrap_or(endpoint), ca))
}

fn bootstrap_kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: tls-bootstrap-token-user\n  name: tls-bootstrap-token-user@kubernetes\ncurrent-context: tls-bootstrap-token-user@kubernetes\nkind: Config\npreferences: {{}}\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\n"
    )
}

pub async fn run(o: &JoinOptions) -> Result<(), String> {
    println!("[preflight] Running pre-flight checks");
    let kubelet_conf = Path::new(KUBERNETES_DIR).join("kubelet.conf");
    let ca_path = Path::new(DEFAULT_CERT_DIR).join("ca.crt");
    let mut findings: Vec<_> = [&kubelet_conf, &ca_path]
        .into_iter()
        .filter_map(|f| crate::app::preflight::file_available(f))
        .collect();
    findings.extend(crate::app::preflight::host_swap());
    crate::app::preflight::report(findings, &o.ignore_preflight_errors)?;
    if let Some(cp) = &o.control_plane {
        crate::app::cmd::joincontrolplane::preflight(cp, &o.ignore_preflight_errors)?;
    }
    let (server, ca) = discover(o).await?;
    let bootstrap = Path::new(KUBERNETES_DIR).join("bootstrap-kubelet.conf");
    pkiutil::write_file(
        &bootstrap,
        &bootstrap_kubeconfig(&server, &ca, &o.token),
        0o600,
    )?;
    pkiutil::write_file(&ca_path, &ca, 0o644)?;
    let client =
        client_go::rest::client(Some(&bootstrap), "kubeadm/v1.35.0 (linux) kubernetes/rust")
            .await?;
    let control_plane = match &o.control_plane {
        Some(cp) => {
            use crate::app::cmd::joincontrolplane as jcp;
            let cfg = jcp::config(&client, cp, &o.node_name).await?;
            jcp::prepare(&client, &cfg, cp, &o.node_name).await?;
            Some((cfg, cp))
        }
        None => None,
    };
    let kubelet = crate::app::phases::uploadconfig::fetch_kubelet_configuration(&client).await?;
    kubelet::write_files(&kubelet, &kubelet::flags(&o.cri_socket, &o.node_name))?;
    kubelet::try_start();
    kubelet::wait_healthy(&kubelet).await?;
    println!("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    let deadline = Instant::now() + o.tls_bootstrap_timeout;
    loop {
        if kubelet_conf.exists()
            && let Ok(c) = client_go::rest::client(
                Some(&kubelet_conf),
                "kubeadm/v1.35.0 (linux) kubernetes/rust",
            )
            .await
            && Api::<Node>::all(c).get(&o.node_name).await.is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(
                "error waiting for the kubelet to perform the TLS Bootstrap: timed out".into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(&bootstrap);
    if let Some((cfg, cp)) = control_plane {
        crate::app::cmd::joincontrolplane::join(&cfg, cp, &o.node_name).await?;
        println!(
            "\nThis node has joined the cluster and a new control plane instance was created:\n\n* Certificate signing request was sent to apiserver and approval was received.\n* The Kubelet was informed of the new secure connection details.\n* Control plane label and taint were applied to the new node.\n* The Kubernetes control plane instances scaled up.\n* A new etcd member was added to the local/stacked etcd cluster.\n\nTo start administering your cluster from this node, you need to run the following as a regular user:\n\n\tmkdir -p $HOME/.kube\n\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n\tsudo chown $(id -u):$(id -g) $HOME/.kube/config\n\nRun 'kubectl get nodes' to see this node join the cluster.\n"
        );
        return Ok(());
    }
    println!(
        "\nThis node has joined the cluster:\n* Certificate signing request was sent to apiserver and a response was received.\n* The Kubelet was informed of the new secure connection details.\n\nRun 'kubectl get nodes' on the control-plane to see this node join the cluster.\n"
    );
    Ok(())
}
