//! `kubeadm join` of a worker, end to end: the control plane's PKI and kubeconfigs from
//! `kubeadm init phase certs|kubeconfig`, its cluster objects from `kubeadm init phase
//! upload-config|bootstrap-token`; the worker is a "machine" of its own (a mount
//! namespace whose `/etc/kubernetes` and `/var/lib/kubelet` are its own directories)
//! where `kubeadm join <endpoint> --token --discovery-token-ca-cert-hash` discovers the
//! cluster through the signed cluster-info and writes the kubelet's configuration, and
//! the kubelet started as systemd would start it TLS-bootstraps into a Ready node. A
//! wrong CA pin is refused before anything is written.

use integration_tests::apiserver::TestApiServer;
use integration_tests::component::TestControllerManager;
use integration_tests::machine::Machine;
use integration_tests::netns::NetNs;
use std::time::{Duration, Instant};

#[test]
fn kubeadm_join_bootstraps_a_worker() {
    let ns = NetNs::new("kjoin");
    ns.enter();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(join());
}

async fn join() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_s = pki.display().to_string();
    let config = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: abcdef.0123456789abcdef\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: cp-1\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P256\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n",
    )
    .unwrap();
    let cfg = config.display().to_string();
    integration_tests::kubeadm::ok(&[
        "init",
        "phase",
        "certs",
        "all",
        "--config",
        &cfg,
        "--cert-dir",
        &pki_s,
    ]);
    let p = |f: &str| pki.join(f).display().to_string();
    let flags = integration_tests::kubeadm::apiserver_flags(&pki);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = TestApiServer::start(None, &flags).await;
    let port = s.port.to_string();
    let kc_dir = dir.path().display().to_string();
    integration_tests::kubeadm::ok(&[
        "init",
        "phase",
        "kubeconfig",
        "all",
        "--config",
        &cfg,
        "--cert-dir",
        &pki_s,
        "--kubeconfig-dir",
        &kc_dir,
        "--apiserver-bind-port",
        &port,
    ]);
    let _kcm = TestControllerManager::start(
        &s.kubeconfig(),
        &[
            "--controllers=csrapproving,csrsigning,bootstrapsigner,tokencleaner",
            &format!("--cluster-signing-cert-file={}", p("ca.crt")),
            &format!("--cluster-signing-key-file={}", p("ca.key")),
        ],
    )
    .await;
    let admin = dir.path().join("admin.conf").display().to_string();
    // The phases talk to the cluster through admin.conf.
    let cluster_args = [
        "--config",
        cfg.as_str(),
        "--cert-dir",
        pki_s.as_str(),
        "--kubeconfig",
        admin.as_str(),
        "--apiserver-bind-port",
        port.as_str(),
    ];
    let out = integration_tests::kubeadm::ok(
        &[
            &["init", "phase", "upload-config", "all"][..],
            &cluster_args[..],
        ]
        .concat(),
    );
    assert!(
        out.contains(
            "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\""
        ),
        "{out}"
    );
    let out = integration_tests::kubeadm::ok(
        &[&["init", "phase", "bootstrap-token"][..], &cluster_args[..]].concat(),
    );
    assert!(
        out.contains("[bootstrap-token] Using token: abcdef.0123456789abcdef"),
        "{out}"
    );
    assert!(
        out.contains("Creating the \"cluster-info\" ConfigMap in the \"kube-public\" namespace"),
        "{out}"
    );

    let worker = Machine::new();
    let endpoint = format!("127.0.0.1:{port}");
    let join_args = |hash: &str| {
        vec![
            "join".to_string(),
            endpoint.clone(),
            "--token".into(),
            "abcdef.0123456789abcdef".into(),
            "--discovery-token-ca-cert-hash".into(),
            hash.to_string(),
            "--node-name".into(),
            "worker-1".into(),
            "--cri-socket".into(),
            "unix:///var/lib/kubelet/fake-cri.sock".into(),
        ]
    };
    // A wrong pin: refused, nothing written.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let o = worker
        .cmd(integration_tests::binary("kubeadm"))
        .args(join_args(&wrong))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("none of the public keys"),
        "{err}"
    );
    assert!(!worker.etc().join("bootstrap-kubelet.conf").exists());

    // The real join, with the kubelet started as its systemd unit would: once kubeadm
    // has written its configuration.
    let kubelet_log = dir.path().join("kubelet.log");
    let port = format!("--port={}", integration_tests::free_port());
    let (out, kubelet) = integration_tests::kubeadm::kubeadm_with_kubelet(
        &worker,
        &join_args(&integration_tests::kubeadm::openssl_ca_hash(
            &pki.join("ca.crt"),
        )),
        &[
            "--node-ip=127.0.0.1",
            "--address=127.0.0.1",
            &port,
            "--fake-container-runtime",
            // Not about eviction: independent of the test machine's free disk.
            "--eviction-hard=memory.available<100Mi,nodefs.available<0%",
        ],
        &kubelet_log,
    )
    .await;
    for line in [
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"",
        "[kubelet-check] The kubelet is healthy after",
        "[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap",
        "This node has joined the cluster:",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // The node's credentials came from the TLS bootstrap; the token file is gone.
    let kubelet_conf = std::fs::read_to_string(worker.etc().join("kubelet.conf")).unwrap();
    assert!(
        kubelet_conf
            .contains("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem"),
        "{kubelet_conf}"
    );
    assert!(!worker.etc().join("bootstrap-kubelet.conf").exists());
    assert_eq!(
        std::fs::read_to_string(worker.etc().join("pki/ca.crt")).unwrap(),
        std::fs::read_to_string(pki.join("ca.crt")).unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = s.client.get("/api/v1/nodes/worker-1").await.json();
        let ready = n["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker-1 not Ready: {}\n{}",
            n["status"],
            std::fs::read_to_string(&kubelet_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // kubeadm reset leaves nothing of the join behind (the kubelet stopped first, as
    // there is no systemd here to stop it).
    drop(kubelet);
    let out = integration_tests::kubeadm::reset_leaves_nothing(
        &worker,
        "unix:///var/lib/kubelet/fake-cri.sock",
    );
    assert!(
        out.contains("[reset] Deleting files: [/etc/kubernetes/admin.conf"),
        "{out}"
    );
}
