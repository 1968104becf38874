//! Several apiservers on one etcd (an HA control plane): with the default `lease`
//! endpoint reconciler each keeps its address in the `kubernetes` Service's Endpoints
//! and EndpointSlice while it lives; one shutting down removes itself at once, and one
//! that dies without a word drops out when its lease expires.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::etcd::Etcd;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn addresses(c: &Client) -> (Vec<String>, Vec<String>) {
    let eps = c
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .json();
    let mut from_eps: Vec<String> = eps["subsets"][0]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect();
    from_eps.sort();
    let slice = c
        .get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .await
        .json();
    let mut from_slice: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addresses"][0].as_str().map(String::from))
        .collect();
    from_slice.sort();
    (from_eps, from_slice)
}

async fn wait_for_addresses(c: &Client, want: &[&str], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (eps, slice) = addresses(c).await;
        if eps == want && slice == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "kubernetes endpoints {eps:?} / slice {slice:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiservers_keep_their_addresses_in_the_kubernetes_service() {
    let etcd = Etcd::start();
    // One control plane: the same keyspace.
    let prefix = format!(
        "--etcd-prefix=/registry-ha-{}",
        integration_tests::free_port()
    );
    let a = TestApiServer::start(
        Some(&etcd.endpoint),
        &["--advertise-address=127.0.0.2", &prefix],
    )
    .await;
    let mut b = TestApiServer::start(
        Some(&etcd.endpoint),
        &["--advertise-address=127.0.0.3", &prefix],
    )
    .await;
    let c = a.client.clone();
    wait_for_addresses(&c, &["127.0.0.2", "127.0.0.3"], Duration::from_secs(15)).await;
    // Each server publishes its identity lease (same host: the same lease, taken over).
    let leases = c
        .get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?labelSelector=apiserver.kubernetes.io%2Fidentity%3Dkube-apiserver")
        .await
        .json();
    let lease = &leases["items"][0];
    let name = lease["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("apiserver-") && name.len() == 36,
        "{lease}"
    );
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{name}_")),
        "{lease}"
    );
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3600);
    assert!(
        lease["metadata"]["labels"]["kubernetes.io/hostname"].is_string(),
        "{lease}"
    );
    let port: Value = c
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .json()["subsets"][0]["ports"][0]
        .clone();
    assert_eq!(port["name"], "https");
    // A graceful shutdown removes the server at once.
    b.terminate();
    let took = wait_for_addresses(&c, &["127.0.0.2"], Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5));
    // Back again, then killed: it drops out once its lease (15 s) expires.
    b.start_again().await;
    wait_for_addresses(&c, &["127.0.0.2", "127.0.0.3"], Duration::from_secs(15)).await;
    b.kill9();
    let took = wait_for_addresses(&c, &["127.0.0.2"], Duration::from_secs(30)).await;
    assert!(
        took > Duration::from_secs(3),
        "removed before its lease expired: {took:?}"
    );
    drop(b);
    drop(a);
}
