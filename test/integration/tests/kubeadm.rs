//! kubeadm's PKI, kubeconfigs and tokens against our apiserver: `kubeadm init phase
//! certs all` and `kubeadm init phase kubeconfig all` make a PKI the apiserver serves
//! and authenticates with (kubectl verifies the serving certificate with the written
//! `admin.conf`, no insecure flag), `kubeadm certs check-expiration` prints upstream's
//! tables, and `kubeadm token create|list|delete` manage bootstrap tokens that
//! authenticate as `system:bootstrap:<id>`.

use integration_tests::apiserver::TestApiServer;
use std::path::Path;
use std::process::Command;

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeadm_pki_kubeconfigs_and_tokens_work_with_the_apiserver() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_s = pki.display().to_string();
    let base = [
        "--cert-dir",
        pki_s.as_str(),
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--node-name",
        "cp-1",
    ];
    let out = integration_tests::kubeadm::ok(
        &[&["init", "phase", "certs", "all"][..], &base[..]].concat(),
    );
    assert!(
        out.contains("[certs] apiserver serving cert is signed for DNS names [kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local cp-1] and IPs [10.96.0.1 127.0.0.1]"),
        "{out}"
    );
    let flags = integration_tests::kubeadm::apiserver_flags(&pki);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = TestApiServer::start(None, &flags).await;
    // The kubeconfigs point at the apiserver's port.
    let port = s.port.to_string();
    let kc_dir = dir.path().display().to_string();
    let out = integration_tests::kubeadm::ok(
        &[
            &[
                "init",
                "phase",
                "kubeconfig",
                "all",
                "--kubeconfig-dir",
                kc_dir.as_str(),
                "--apiserver-bind-port",
                port.as_str(),
            ][..],
            &base[..],
        ]
        .concat(),
    );
    for f in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        assert!(
            out.contains(&format!("[kubeconfig] Writing \"{f}\" kubeconfig file")),
            "{out}"
        );
    }
    let admin = dir.path().join("admin.conf");
    let super_admin = dir.path().join("super-admin.conf");
    // admin.conf's group is bound by `kubeadm init`; until then only super-admin.conf
    // (system:masters) may act.
    let (ok, out) = kubectl(&admin, &["get", "namespaces"]);
    assert!(!ok && out.contains("Forbidden"), "{out}");
    let (ok, out) = kubectl(
        &super_admin,
        &[
            "create",
            "clusterrolebinding",
            "kubeadm:cluster-admins",
            "--clusterrole=cluster-admin",
            "--group=kubeadm:cluster-admins",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&admin, &["get", "namespaces", "kube-system"]);
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, out) = kubectl(&dir.path().join("kubelet.conf"), &["auth", "whoami"]);
    assert!(
        ok && out.contains("system:node:cp-1") && out.contains("system:nodes"),
        "{out}"
    );

    // check-expiration: upstream's two tables.
    let out = integration_tests::kubeadm::ok(&[
        "certs",
        "check-expiration",
        "--cert-dir",
        &pki_s,
        "--kubeconfig",
        &admin.display().to_string(),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("CERTIFICATE   "))
        .unwrap();
    assert_eq!(
        lines[header].trim_end(),
        "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED"
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("apiserver-etcd-client "))
        .unwrap();
    assert!(
        row.contains(" etcd-ca ") && row.trim_end().ends_with("no"),
        "{row}"
    );
    assert!(row.contains("364d") || row.contains("365d"), "{row}");
    let ca_row = lines
        .iter()
        .find(|l| l.starts_with("front-proxy-ca "))
        .unwrap();
    assert!(ca_row.contains(" 9y "), "{ca_row}");
    assert!(!out.contains("kubelet.conf"), "{out}");

    // Tokens.
    let admin_s = admin.display().to_string();
    let out = integration_tests::kubeadm::ok(&[
        "token",
        "create",
        "abcdef.0123456789abcdef",
        "--print-join-command",
        "--kubeconfig",
        &admin_s,
    ]);
    assert_eq!(
        out.trim(),
        format!(
            "kubeadm join 127.0.0.1:{} --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash {}",
            s.port,
            integration_tests::kubeadm::openssl_ca_hash(&pki.join("ca.crt"))
        )
    );
    let generated = integration_tests::kubeadm::ok(&[
        "token",
        "create",
        "--ttl",
        "0",
        "--description",
        "forever",
        "--kubeconfig",
        &admin_s,
    ]);
    let generated = generated.trim();
    assert!(
        generated.len() == 23 && generated.as_bytes()[6] == b'.',
        "{generated}"
    );
    let list = integration_tests::kubeadm::ok(&["token", "list", "--kubeconfig", &admin_s]);
    let row = list
        .lines()
        .find(|l| l.starts_with("abcdef.0123456789abcdef"))
        .unwrap();
    assert!(
        row.contains("23h")
            && row.contains("authentication,signing")
            && row.contains("system:bootstrappers:kubeadm:default-node-token"),
        "{list}"
    );
    let row = list.lines().find(|l| l.starts_with(generated)).unwrap();
    assert!(
        row.contains("<forever>") && row.contains("<never>") && row.contains("forever"),
        "{list}"
    );
    // The token authenticates as upstream's bootstrap identity.
    let boot = dir.path().join("boot.conf");
    let text = std::fs::read_to_string(&admin).unwrap();
    let cut = text.find("users:").unwrap();
    std::fs::write(
        &boot,
        format!(
            "{}users:\n- name: kubernetes-admin\n  user:\n    token: abcdef.0123456789abcdef\n",
            &text[..cut]
        ),
    )
    .unwrap();
    let (ok, out) = kubectl(&boot, &["auth", "whoami"]);
    assert!(
        ok && out.contains("system:bootstrap:abcdef")
            && out.contains("system:bootstrappers:kubeadm:default-node-token"),
        "{out}"
    );
    let out =
        integration_tests::kubeadm::ok(&["token", "delete", "abcdef", "--kubeconfig", &admin_s]);
    assert_eq!(out.trim(), "bootstrap token \"abcdef\" deleted");
    let (ok, out) = kubectl(&boot, &["auth", "whoami"]);
    assert!(!ok && out.contains("Unauthorized"), "{out}");
    let (ok, _, err) = integration_tests::kubeadm::run(&[
        "token",
        "create",
        "NOT-A-TOKEN",
        "--kubeconfig",
        &admin_s,
    ]);
    assert!(!ok && err.contains("was not of the form"), "{err}");
    // certs renew: new keys and certificates for what the old ones were issued for; the
    // renewed admin.conf works at once (client certificates are checked per request).
    let before = std::fs::read_to_string(pki.join("apiserver.crt")).unwrap();
    let admin_before = std::fs::read_to_string(&admin).unwrap();
    let out = integration_tests::kubeadm::ok(&[
        "certs",
        "renew",
        "all",
        "--cert-dir",
        &pki_s,
        "--kubeconfig",
        &admin_s,
    ]);
    assert!(
        out.contains("certificate for serving the Kubernetes API renewed"),
        "{out}"
    );
    assert!(out.contains("certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself renewed"), "{out}");
    assert!(out.contains("Done renewing certificates."), "{out}");
    let after = std::fs::read_to_string(pki.join("apiserver.crt")).unwrap();
    assert_ne!(before, after);
    assert_ne!(admin_before, std::fs::read_to_string(&admin).unwrap());
    let text = |f: &Path| {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let san = |t: &str| {
        t.lines()
            .skip_while(|l| !l.contains("Subject Alternative Name"))
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let renewed = text(&pki.join("apiserver.crt"));
    assert!(
        san(&renewed).contains("DNS:kubernetes.default.svc.cluster.local")
            && san(&renewed).contains("IP Address:127.0.0.1"),
        "{renewed}"
    );
    let o = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(pki.join("ca.crt"))
        .arg(pki.join("apiserver.crt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let (ok, out) = kubectl(&admin, &["get", "namespaces", "kube-system"]);
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, _, err) = integration_tests::kubeadm::run(&[
        "certs",
        "renew",
        "nonsense",
        "--cert-dir",
        &pki_s,
        "--kubeconfig",
        &admin_s,
    ]);
    assert!(!ok && err.contains("unknown certificate"), "{err}");
    // mark-control-plane: the node labelled and tainted as upstream.
    let r = s
        .client
        .send_json(
            "POST",
            "/api/v1/nodes",
            &serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp-1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let out = integration_tests::kubeadm::ok(
        &[
            &[
                "init",
                "phase",
                "mark-control-plane",
                "--kubeconfig",
                admin_s.as_str(),
            ][..],
            &base[..],
        ]
        .concat(),
    );
    assert!(out.contains("[mark-control-plane] Marking the node cp-1 as control-plane by adding the taints [node-role.kubernetes.io/control-plane:NoSchedule]"), "{out}");
    let n = s.client.get("/api/v1/nodes/cp-1").await.json();
    assert_eq!(
        n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"], "",
        "{n}"
    );
    assert_eq!(
        n["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"], "",
        "{n}"
    );
    // (The apiserver's TaintNodesByCondition added the not-ready taint on create.)
    assert!(
        n["spec"]["taints"].as_array().unwrap().contains(&serde_json::json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})),
        "{n}"
    );
    // Static pod manifests: valid Pods (the apiserver accepts them in a dry run), and
    // every flag they pass is one the component implements.
    let manifests = dir.path().join("manifests");
    let m = manifests.display().to_string();
    let out = integration_tests::kubeadm::ok(
        &[
            &[
                "init",
                "phase",
                "control-plane",
                "all",
                "--manifests-dir",
                m.as_str(),
            ][..],
            &base[..],
        ]
        .concat(),
    );
    assert!(
        out.contains("[control-plane] Creating static Pod manifest for \"kube-apiserver\""),
        "{out}"
    );
    integration_tests::kubeadm::ok(
        &[
            &[
                "init",
                "phase",
                "etcd",
                "local",
                "--manifests-dir",
                m.as_str(),
            ][..],
            &base[..],
        ]
        .concat(),
    );
    for (file, binary) in [
        (
            "kube-apiserver.yaml",
            integration_tests::binary("kube-apiserver")
                .display()
                .to_string(),
        ),
        (
            "kube-controller-manager.yaml",
            integration_tests::binary("kube-controller-manager")
                .display()
                .to_string(),
        ),
        (
            "kube-scheduler.yaml",
            integration_tests::binary("kube-scheduler")
                .display()
                .to_string(),
        ),
        ("etcd.yaml", "etcd".to_string()),
    ] {
        let text = std::fs::read_to_string(manifests.join(file)).unwrap();
        let r = s
            .client
            .request(
                "POST",
                "/api/v1/namespaces/kube-system/pods?dryRun=All",
                "application/yaml",
                text.clone(),
            )
            .await;
        assert_eq!(r.status, 201, "{file}: {}", r.text());
        let pod = r.json();
        assert_eq!(pod["spec"]["hostNetwork"], true, "{file}");
        assert_eq!(
            pod["spec"]["priorityClassName"], "system-node-critical",
            "{file}"
        );
        let help = Command::new(&binary).arg("--help").output().unwrap();
        let help = format!(
            "{}{}",
            String::from_utf8_lossy(&help.stdout),
            String::from_utf8_lossy(&help.stderr)
        );
        for arg in pod["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
        {
            let flag = arg.as_str().unwrap().split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} "))
                    || help.contains(&format!("{flag}="))
                    || help.contains(&format!("{flag}\n"))
                    || help.contains(&format!("{flag} <")),
                "{file}: {flag} is not a flag of {binary}"
            );
        }
    }
    // Refused, not ignored: a config field this kubeadm does not implement.
    let cfg = dir.path().join("kubeadm.yaml");
    std::fs::write(&cfg, "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  Foo: true\n").unwrap();
    let (ok, _, err) = integration_tests::kubeadm::run(&[
        "init",
        "phase",
        "certs",
        "all",
        "--config",
        &cfg.display().to_string(),
        "--cert-dir",
        &pki_s,
    ]);
    assert!(!ok && err.contains("featureGates"), "{err}");
}
