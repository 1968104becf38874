//! The stacked etcd cluster seen from kubeadm (upstream `cmd/kubeadm/app/util/etcd/etcd.go`
//! and `phases/etcd/local.go`): a client for the members the cluster's etcd static Pods
//! announce, a new member added as a learner and promoted once in sync, and a member
//! removed when its node is reset.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::path::Path;
use std::time::{Duration, Instant};

/// The annotation kubeadm's etcd static Pods carry their client URL in.
pub const ADVERTISE_CLIENT_URLS: &str = "kubeadm.kubernetes.io/etcd.advertise-client-urls";

/// How long a learner may take to catch up before promotion is given up (upstream's
/// etcdHealthyCheckInterval × etcdHealthyCheckRetries).
const PROMOTE_TIMEOUT: Duration = Duration::from_secs(40);

/// `https://<advertise address>:<port>`, bracketed for IPv6.
fn url(address: &str, port: u16) -> String {
    match address.contains(':') {
        true => format!("https://[{address}]:{port}"),
        false => format!("https://{address}:{port}"),
    }
}

pub fn peer_url(address: &str) -> String {
    url(address, 2380)
}

pub fn client_url(address: &str) -> String {
    url(address, 2379)
}

/// The client URLs the cluster's etcd static Pods announce.
async fn endpoints(admin: &kube::Client) -> Result<Vec<String>, String> {
    let pods = Api::<Pod>::namespaced(admin.clone(), "kube-system")
        .list(&ListParams::default().labels("component=etcd,tier=control-plane"))
        .await
        .map_err(|e| format!("listing the etcd Pods: {e}"))?;
    let endpoints: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get(ADVERTISE_CLIENT_URLS)
                .cloned()
        })
        .collect();
    if endpoints.is_empty() {
        return Err(format!(
            "no etcd member found in the cluster (no etcd static Pod with the {ADVERTISE_CLIENT_URLS} annotation)"
        ));
    }
    Ok(endpoints)
}

/// A client of the stacked etcd cluster (upstream `NewFromCluster`), authenticated with
/// the apiserver's etcd client certificate; the endpoints it uses.
pub async fn from_cluster(
    admin: &kube::Client,
    certificates_dir: &Path,
) -> Result<(etcd_client::Client, Vec<String>), String> {
    let endpoints = endpoints(admin).await?;
    let read = |f: &str| std::fs::read(certificates_dir.join(f)).map_err(|e| format!("{f}: {e}"));
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read("etcd/ca.crt")?))
        .identity(etcd_client::Identity::from_pem(
            read("apiserver-etcd-client.crt")?,
            read("apiserver-etcd-client.key")?,
        ));
    let options = etcd_client::ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    let client = etcd_client::Client::connect(endpoints.clone(), Some(options))
        .await
        .map_err(|e| format!("connecting to etcd at {endpoints:?}: {e}"))?;
    Ok((client, endpoints))
}

/// The `--initial-cluster` value for `node` once `peer` belongs to `members`.
pub fn initial_cluster(members: &[etcd_client::Member], peer: &str, node: &str) -> String {
    members
        .iter()
        .filter_map(|m| {
            let url = m.peer_urls().first()?.clone();
            let name = if url == peer || m.name().is_empty() {
                node.to_string()
            } else {
                m.name().to_string()
            };
            Some(format!("{name}={url}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds `peer` as a learner (or finds it from an earlier attempt); the learner's id
/// (None when it already is a voting member) and the `--initial-cluster` value.
pub async fn add_learner(
    client: &mut etcd_client::Client,
    peer: &str,
    node: &str,
) -> Result<(Option<u64>, String), String> {
    let members = client
        .member_list()
        .await
        .map_err(|e| format!("listing the etcd members: {e}"))?;
    if let Some(m) = members
        .members()
        .iter()
        .find(|m| m.peer_urls().iter().any(|u| u == peer))
    {
        let id = m.is_learner().then_some(m.id());
        return Ok((id, initial_cluster(members.members(), peer, node)));
    }
    println!("[etcd] Adding etcd member as learner: {peer}");
    let added = client
        .member_add(
            [peer.to_string()],
            Some(etcd_client::MemberAddOptions::new().with_is_learner()),
        )
        .await
        .map_err(|e| format!("adding the etcd member {peer}: {e}"))?;
    let id = added.member().map(|m| m.id());
    Ok((id, initial_cluster(added.member_list(), peer, node)))
}

/// Promotes learner `id` to a voting member, retrying while it catches up with the
/// leader (etcd refuses to promote a learner that is not in sync).
pub async fn promote(client: &mut etcd_client::Client, id: u64) -> Result<(), String> {
    let deadline = Instant::now() + PROMOTE_TIMEOUT;
    loop {
        match client.member_promote(id).await {
            Ok(_) => {
                println!("[etcd] Promoted the learner member {id:016x} to a voting member");
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "the etcd learner {id:016x} was not promoted within {PROMOTE_TIMEOUT:?}: {e}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Removes this node's member (`peer`) from the stacked etcd cluster (upstream
/// `RemoveStackedEtcdMemberFromCluster`); nothing to do when it is the last member.
pub async fn remove_member(
    admin: &kube::Client,
    certificates_dir: &Path,
    advertise_address: &str,
) -> Result<(), String> {
    let (mut client, endpoints) = from_cluster(admin, certificates_dir).await?;
    let members = client
        .member_list()
        .await
        .map_err(|e| format!("listing the etcd members: {e}"))?;
    if members.members().len() == 1 && endpoints.contains(&client_url(advertise_address)) {
        return Ok(());
    }
    let peer = peer_url(advertise_address);
    let Some(member) = members
        .members()
        .iter()
        .find(|m| m.peer_urls().contains(&peer))
    else {
        return Ok(());
    };
    client
        .member_remove(member.id())
        .await
        .map_err(|e| format!("removing the etcd member {peer}: {e}"))?;
    println!("[reset] Removed the etcd member {peer} from the cluster");
    Ok(())
}
