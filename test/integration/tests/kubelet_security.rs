//! The security context on a real containerd (runc): what a pod asks for is what its
//! processes get, or the pod is refused with upstream's reason.
//! - seccomp RuntimeDefault blocks `unshare` (EPERM) where Unconfined allows it;
//! - `runAsNonRoot` with an image that runs as root: `CreateContainerConfigError` with
//!   upstream's message, and the container never starts;
//! - `fsGroup` owns the pod's emptyDir and configMap volumes (setgid directories, so
//!   new files keep the group) and joins the process's groups;
//! - capabilities dropped, no_new_privs, a read-only root filesystem;
//! - a safe sysctl is set in the pod; an unsafe one not allowlisted is refused
//!   (`SysctlForbidden`), one allowlisted by `--allowed-unsafe-sysctls` is set;
//! - container logs rotate at `--container-log-max-size`, at most
//!   `--container-log-max-files` files kept, `kubectl logs` reading on.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use integration_tests::node::{BUSYBOX, TestContainerd, TestKubelet};
use integration_tests::{condition, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

async fn pod(c: &Client, name: &str) -> Value {
    c.get(&format!("/api/v1/namespaces/default/pods/{name}"))
        .await
        .json()
}

/// A pod of one busybox container running `script` (its outcome written to the
/// termination log), never restarted.
fn script_pod(name: &str, script: &str, pod_sc: Value, container_sc: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "nodeName": "node-s", "securityContext": pod_sc,
            "containers": [{"name": "c", "image": BUSYBOX, "securityContext": container_sc,
                "command": ["sh", "-c", script]}]}})
}

/// The termination message of a pod's finished container.
async fn message(c: &Client, name: &str) -> String {
    wait_for(
        &format!("pod {name} finished"),
        Duration::from_secs(60),
        || async {
            let p = pod(c, name).await;
            let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
            t.is_object()
                .then(|| t["message"].as_str().unwrap_or_default().to_string())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_the_security_they_ask_for() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    // The log check every 3 s (the least upstream allows) rather than 10 s.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\nauthorization:\n  mode: AlwaysAllow\ncontainerLogMonitorInterval: 3s\n",
    )
    .unwrap();
    let config_flag = format!("--config={}", config.path().display());
    let k = TestKubelet::start(
        &s.kubeconfig(),
        &ctd,
        "node-s",
        &[
            &config_flag,
            "--allowed-unsafe-sysctls=net.core.somaxconn",
            "--container-log-max-size=2Ki",
            "--container-log-max-files=4",
        ],
    )
    .await;
    let pods = "/api/v1/namespaces/default/pods";
    let report = "echo rc=$? > /dev/termination-log";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
        "data": {"a": "1"}});
    c.create("/api/v1/namespaces/default/configmaps", &cm).await;
    // A local PersistentVolume, bound ahead to its claim.
    let local_dir = tempfile::tempdir().unwrap();
    std::fs::write(local_dir.path().join("old"), "x").unwrap();
    c.create(
        "/api/v1/persistentvolumes",
        &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "local-pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": "", "local": {"path": local_dir.path()},
                "claimRef": {"namespace": "default", "name": "local-claim"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-s"]}]}]}}}}),
    )
    .await;
    c.create(
        "/api/v1/namespaces/default/persistentvolumeclaims",
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "local-claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": "local-pv",
                "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    let mut fs_group = script_pod(
        "fsgroup",
        "{ stat -c %g /data; touch /data/new && stat -c %g /data/new; stat -c %g /cfg/a; stat -c %g /pv/old; id -G; } > /dev/termination-log",
        json!({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000}),
        json!({}),
    );
    fs_group["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "settings"}},
        {"name": "pv", "persistentVolumeClaim": {"claimName": "local-claim"}}]);
    fs_group["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"},
        {"name": "cfg", "mountPath": "/cfg"}, {"name": "pv", "mountPath": "/pv"}]);
    let safe_sysctl = script_pod(
        "sysctl-safe",
        "{ cat /proc/sys/net/ipv4/ip_local_port_range; cat /proc/sys/net/core/somaxconn; } > /dev/termination-log",
        json!({"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "2000 3000"},
            {"name": "net.core.somaxconn", "value": "1234"}]}),
        json!({}),
    );
    for p in [
        script_pod(
            "seccomp-default",
            &format!("unshare -U true; {report}"),
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            json!({}),
        ),
        script_pod(
            "seccomp-unconfined",
            &format!("unshare -U true; {report}"),
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            json!({"seccompProfile": {"type": "Unconfined"}}),
        ),
        script_pod("nonroot", "true", json!({"runAsNonRoot": true}), json!({})),
        fs_group,
        script_pod(
            "restricted",
            "{ grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; touch /rootfs-file; echo rc=$?; } > /dev/termination-log",
            json!({}),
            json!({"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true}),
        ),
        safe_sysctl,
        script_pod(
            "chatty",
            "while true; do echo 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789; sleep 0.02; done",
            json!({}),
            json!({}),
        ),
        script_pod(
            "sysctl-unsafe",
            "true",
            json!({"sysctls": [{"name": "net.core.rmem_max", "value": "1048576"}]}),
            json!({}),
        ),
    ] {
        c.create(pods, &p).await;
    }

    // seccomp: the runtime's default profile blocks unshare without CAP_SYS_ADMIN.
    assert_eq!(message(&c, "seccomp-default").await, "rc=1\n");
    assert_eq!(message(&c, "seccomp-unconfined").await, "rc=0\n");

    // runAsNonRoot against busybox, which runs as root.
    let waiting = wait_for("nonroot refused", Duration::from_secs(60), || async {
        let p = pod(&c, "nonroot").await;
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerConfigError").then_some(w)
    })
    .await;
    let uid = pod(&c, "nonroot").await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        waiting["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: c)"
        )
    );

    // fsGroup: the volumes' group (a local PV's too), inherited by new files, and the
    // process's groups.
    assert_eq!(
        message(&c, "fsgroup").await,
        "2000\n2000\n2000\n2000\n1000 2000\n"
    );

    // Capabilities dropped, no_new_privs, read-only root.
    let m = message(&c, "restricted").await;
    assert!(m.contains("CapEff:\t0000000000000000"), "{m}");
    assert!(m.contains("NoNewPrivs:\t1"), "{m}");
    assert!(m.ends_with("rc=1\n"), "{m}");

    // Sysctls: safe and allowlisted ones are set; others refuse the pod.
    assert_eq!(message(&c, "sysctl-safe").await, "2000\t3000\n1234\n");
    let p = wait_for(
        "sysctl-unsafe rejected",
        Duration::from_secs(30),
        || async {
            let p = pod(&c, "sysctl-unsafe").await;
            (p["status"]["phase"] == "Failed").then_some(p)
        },
    )
    .await;
    assert_eq!(p["status"]["reason"], "SysctlForbidden", "{}", p["status"]);
    assert_eq!(
        p["status"]["message"],
        "forbidden sysctl: \"net.core.rmem_max\" not allowlisted"
    );

    // Log rotation: files rotate, all but the newest rotated one are compressed, the
    // oldest go, the live log stays readable.
    let rotated = || {
        let mut files: Vec<String> =
            integration_tests::machine::Machine::files_under(&k.logs_dir())
                .into_iter()
                .filter(|f| {
                    f.contains("_chatty_") && f.contains("/c/0.log.") && !f.ends_with(".tmp")
                })
                .collect();
        files.sort();
        files
    };
    let first = wait_for(
        "the chatty log rotated",
        Duration::from_secs(60),
        || async {
            let r = rotated();
            (!r.is_empty()).then_some(r)
        },
    )
    .await;
    wait_for(
        "the oldest rotated log removed",
        Duration::from_secs(60),
        || async {
            let r = rotated();
            assert!(r.len() <= 3, "more than --container-log-max-files: {r:?}");
            (!r.contains(&first[0])).then_some(())
        },
    )
    .await;
    let gz = wait_for(
        "a compressed rotated log",
        Duration::from_secs(30),
        || async {
            let r = rotated();
            // The newest two at most: the one rotated last, and the one before it, which
            // the next rotation compresses (upstream's order).
            assert!(
                r.iter().filter(|f| !f.ends_with(".gz")).count() <= 2,
                "older rotated logs are compressed: {r:?}"
            );
            r.into_iter().find(|f| f.ends_with(".gz"))
        },
    )
    .await;
    let out = std::process::Command::new("gzip")
        .args(["-dc", &gz])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("0123456789"),
        "{gz}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out, err) = s.kubectl(&["logs", "chatty", "--tail=1"], None);
    assert!(ok && out.starts_with("0123456789"), "{out}{err}");
}

/// In-place resize (`pods/resize`): a CPU change with `NotRequired` reaches the running
/// container's cgroup without a restart; a memory change whose policy is
/// `RestartContainer` restarts it; a resize beyond the node is `PodResizePending`
/// (Infeasible) and changes nothing. Then `kubectl debug --target`: ephemeral containers
/// in the pod's running target's process namespace, one run to completion, one an
/// interactive shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_resize_in_place_and_take_debug_containers() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let _k = TestKubelet::start(&s.kubeconfig(), &ctd, "node-r", &[]).await;
    let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r"},
        "spec": {"nodeName": "node-r", "containers": [{"name": "c", "image": BUSYBOX,
            "command": ["sleep", "3600"],
            "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"},
                {"resourceName": "memory", "restartPolicy": "RestartContainer"}],
            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"},
                "limits": {"cpu": "500m", "memory": "64Mi"}}}]}});
    c.create("/api/v1/namespaces/default/pods", &p).await;
    let status = |want: &'static str| {
        let c = c.clone();
        async move {
            let p = pod(&c, "r").await;
            let st = p["status"]["containerStatuses"][0].clone();
            (st["state"]["running"].is_object() && st["resources"]["limits"]["cpu"] == want)
                .then_some(st)
        }
    };
    wait_for("r running", Duration::from_secs(60), || status("500m")).await;
    // The CFS quota the container's cgroup has (cgroup v2 or v1).
    let cpu_quota = || {
        let (ok, out, err) = s.kubectl(
            &[
                "exec",
                "r",
                "--",
                "sh",
                "-c",
                "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            ],
            None,
        );
        assert!(ok, "{err}");
        out.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(cpu_quota(), "50000");
    let resize = |patch: &str| {
        let (ok, out, err) = s.kubectl(
            &["patch", "pod", "r", "--subresource", "resize", "-p", patch],
            None,
        );
        assert!(ok, "{out}{err}");
    };
    resize(
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"200m"},"limits":{"cpu":"800m"}}}]}}"#,
    );
    let st = wait_for("the CPU resize applied", Duration::from_secs(60), || {
        status("800m")
    })
    .await;
    assert_eq!(st["restartCount"], 0, "{st}");
    assert_eq!(st["allocatedResources"]["cpu"], "200m", "{st}");
    assert_eq!(cpu_quota(), "80000");

    // Memory's policy restarts the container.
    resize(r#"{"spec":{"containers":[{"name":"c","resources":{"limits":{"memory":"128Mi"}}}]}}"#);
    let st = wait_for(
        "the memory resize restarted the container",
        Duration::from_secs(60),
        || async {
            let p = pod(&c, "r").await;
            let st = p["status"]["containerStatuses"][0].clone();
            (st["restartCount"] == 1 && st["state"]["running"].is_object()).then_some(st)
        },
    )
    .await;
    assert_eq!(st["resources"]["limits"]["memory"], "128Mi", "{st}");

    // More CPU than the node has: pending, nothing changes.
    resize(
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"1000"},"limits":{"cpu":"1000"}}}]}}"#,
    );
    let cond = wait_for("PodResizePending", Duration::from_secs(60), || async {
        let p = pod(&c, "r").await;
        p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodResizePending").cloned())
    })
    .await;
    assert_eq!(cond["reason"], "Infeasible", "{cond}");
    assert!(
        cond["message"]
            .as_str()
            .unwrap()
            .starts_with("Node didn't have enough capacity: cpu, requested: 1000000, capacity: "),
        "{cond}"
    );
    assert_eq!(cpu_quota(), "80000");

    // kubectl debug: an ephemeral container in the running pod, in the target's process
    // namespace, run to completion, and one attached interactively.
    let (ok, out, err) = s.kubectl(
        &[
            "debug",
            "r",
            &format!("--image={BUSYBOX}"),
            "--target=c",
            "--container=dbg",
            "--",
            "ps",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    wait_for(
        "the debug container finished",
        Duration::from_secs(60),
        || async {
            let p = pod(&c, "r").await;
            let st = p["status"]["ephemeralContainerStatuses"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == "dbg").cloned())?;
            (st["state"]["terminated"]["exitCode"] == 0).then_some(())
        },
    )
    .await;
    let (ok, logs, err) = s.kubectl(&["logs", "r", "-c", "dbg"], None);
    assert!(ok && logs.contains("sleep 3600"), "{logs}{err}");
    // An interactive debug shell: its stdin stays open as a terminal's would (the
    // runtime detaches a session whose stdin closes).
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(echo \"echo from-the-debug-shell; ps | grep -c '[s]leep 3600'; exit\"; sleep 5) | kubectl --kubeconfig={} debug -i r --image={BUSYBOX} --target=c --container=shell -- sh",
            s.kubeconfig().display()
        ))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("from-the-debug-shell\n1\n"), "{out}{err}");
}

/// The kubelet's `/healthz` follows its sync loop: healthy while it runs, failing with
/// upstream's check name once it hangs longer than the threshold (the test hook hangs it
/// after 3 s and sets a 3 s threshold instead of upstream's minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sync_loop_fails_healthz() {
    let s = TestApiServer::start(None, &["--disable-admission-plugins=ServiceAccount"]).await;
    let ctd = TestContainerd::start().await;
    let k = TestKubelet::start_with_env(
        &s.kubeconfig(),
        &ctd,
        "node-h",
        None,
        "127.0.0.1",
        &[],
        &[(
            "KUBELET_TEST_HOOKS",
            "stall-sync-loop-after=3s,health-threshold=3s",
        )],
    )
    .await;
    let healthz = || async {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", k.healthz_port))
            .await
            .ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.ok()?;
        let mut buf = String::new();
        c.read_to_string(&mut buf).await.ok()?;
        Some(buf)
    };
    let started = std::time::Instant::now();
    let first = healthz().await.unwrap_or_default();
    assert!(
        first.starts_with("HTTP/1.1 200") || first.starts_with("HTTP/1.0 200"),
        "{first}"
    );
    let failed = wait_for("healthz failing", Duration::from_secs(30), || async {
        let r = healthz().await?;
        r.contains(" 500 ").then_some(r)
    })
    .await;
    assert!(
        failed.contains("[-]syncloop failed: reason withheld"),
        "{failed}"
    );
    assert!(failed.contains("healthz check failed"), "{failed}");
    // Not before the threshold has passed since the last iteration.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// `imagePullSecrets`: a private registry (Debian's docker-registry with htpasswd
/// authentication, started here) serves an image only to pods whose pull Secret holds
/// the credentials; without it the pull fails and the container waits in
/// ErrImagePull/ImagePullBackOff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_images_pull_with_the_pods_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = integration_tests::free_port();
    let host = format!("127.0.0.1:{port}");
    let htpasswd = std::process::Command::new("htpasswd")
        .args(["-Bbn", "puller", "s3cret"])
        .output()
        .expect("htpasswd (apache2-utils)");
    std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
    std::fs::write(
        dir.path().join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        ),
    )
    .unwrap();
    let _registry = integration_tests::machine::Killed(
        std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("registry.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry"),
    );
    wait_for(
        "the registry listening",
        Duration::from_secs(20),
        || async { std::net::TcpStream::connect(&host).ok() },
    )
    .await;
    let s = TestApiServer::start(None, &["--disable-admission-plugins=ServiceAccount"]).await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    ctd.trust_plain_http_registry(&host);
    let private = format!("{host}/private/busybox:1.36");
    let (ok, out) = ctd.ctr(&["images", "tag", BUSYBOX, &private]);
    assert!(ok, "{out}");
    let (ok, out) = ctd.ctr(&[
        "images",
        "push",
        "--plain-http",
        "--user",
        "puller:s3cret",
        &private,
    ]);
    assert!(ok, "{out}");
    // The node must pull it: only the registry has it now.
    let (ok, out) = ctd.ctr(&["images", "rm", &private]);
    assert!(ok, "{out}");
    let _k = TestKubelet::start(&s.kubeconfig(), &ctd, "node-p", &[]).await;
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "puller:s3cret");
    let config = json!({"auths": {host.clone(): {"auth": auth}}}).to_string();
    c.create(
        "/api/v1/namespaces/default/secrets",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, config)}}),
    )
    .await;
    for (name, secrets) in [
        ("with-secret", json!([{"name": "regcred"}])),
        ("without", json!([])),
    ] {
        c.create(
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "node-p", "imagePullSecrets": secrets,
                    "containers": [{"name": "c", "image": private, "imagePullPolicy": "Always",
                        "command": ["sleep", "3600"]}]}}),
        )
        .await;
    }
    wait_for(
        "the pod with the secret running",
        Duration::from_secs(60),
        || async {
            let p = pod(&c, "with-secret").await;
            (p["status"]["phase"] == "Running").then_some(())
        },
    )
    .await;
    let waiting = wait_for(
        "the pod without it refused",
        Duration::from_secs(60),
        || async {
            let p = pod(&c, "without").await;
            let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            matches!(
                w["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
            .then_some(w)
        },
    )
    .await;
    assert_eq!(
        pod(&c, "without").await["status"]["phase"],
        "Pending",
        "{waiting}"
    );
    // Upstream's pull events: Pulling, then Pulled with the time and size, or Failed
    // with the error and the container's reason, then the back-off.
    let events_of = |pod: &'static str| {
        let c = c.clone();
        async move {
            let l = c
                .get(&format!(
                    "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D{pod}"
                ))
                .await
                .json();
            l["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["type"].as_str().unwrap_or_default(),
                        e["reason"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let ok = events_of("with-secret").await;
    assert!(
        ok.contains(&format!("Normal Pulling Pulling image \"{private}\"")),
        "{ok:?}"
    );
    assert!(
        ok.iter().any(|e| e.starts_with(&format!(
            "Normal Pulled Successfully pulled image \"{private}\" in "
        )) && e.contains(" including waiting). Image size: ")
            && e.ends_with(" bytes.")
            && !e.contains("Image size: 0 bytes")),
        "{ok:?}"
    );
    let failed = wait_for("the back-off events", Duration::from_secs(30), || async {
        let ev = events_of("without").await;
        ev.iter()
            .any(|e| e == &format!("Normal BackOff Back-off pulling image \"{private}\""))
            .then_some(ev)
    })
    .await;
    for want in [
        format!("Warning Failed Failed to pull image \"{private}\": "),
        "Warning Failed Error: ErrImagePull".to_string(),
        "Warning Failed Error: ImagePullBackOff".to_string(),
    ] {
        assert!(
            failed.iter().any(|e| e.starts_with(&want)),
            "{want}: {failed:?}"
        );
    }
}

/// A cgroup v1 controller file of the cgroup `path` (or the v2 file of the same job).
fn cgroup_file(path: &str, v1: (&str, &str), v2: &str) -> String {
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = if unified {
        format!("/sys/fs/cgroup{path}/{v2}")
    } else {
        format!("/sys/fs/cgroup/{}{path}/{}", v1.0, v1.1)
    };
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {file}: {e}"))
        .trim()
        .to_string()
}

/// Removes a test's cgroup tree (children first) from every hierarchy.
fn remove_cgroup_tree(root: &str) {
    fn rm(d: &std::path::Path) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    rm(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(d);
    }
    let base = std::path::Path::new("/sys/fs/cgroup");
    rm(&base.join(root.trim_start_matches('/')));
    for h in std::fs::read_dir(base).into_iter().flatten().flatten() {
        rm(&h.path().join(root.trim_start_matches('/')));
    }
}

/// The kubelet's cgroups (`cm`): under `--cgroup-root`, `kubepods` is limited to the
/// node's allocatable (capacity less `--kube-reserved`/`--system-reserved`), the QoS
/// classes get their shares, and each pod a cgroup with its limits and `--pod-max-pids`,
/// which a fork loop cannot pass; the pod's cgroup goes with the pod. The systemd
/// driver is refused on a host without systemd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_in_the_kubepods_hierarchy() {
    let s = TestApiServer::start(
        None,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let root = format!("/ktest{}", std::process::id());
    let root_flag = format!("--cgroup-root={root}");
    let k = TestKubelet::start(
        &s.kubeconfig(),
        &ctd,
        "node-cg",
        &[
            &root_flag,
            "--pod-max-pids=40",
            "--kube-reserved=memory=1Gi,pid=1000",
            "--system-reserved=cpu=500m",
        ],
    )
    .await;
    let kubepods = format!("{root}/kubepods");
    // The node's allocatable on kubepods.
    let mem_total: i64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let limit: i64 = wait_for("kubepods", Duration::from_secs(30), || async {
        std::path::Path::new(&format!("/sys/fs/cgroup/memory{kubepods}"))
            .exists()
            .then(|| {
                cgroup_file(&kubepods, ("memory", "memory.limit_in_bytes"), "memory.max")
                    .parse()
                    .unwrap()
            })
    })
    .await;
    let want = mem_total * 1024 - (1 << 30);
    assert!(
        (want - limit).abs() < 4096,
        "kubepods memory {limit}, want {want}"
    );
    let cpus = std::thread::available_parallelism().unwrap().get() as i64;
    let shares: i64 = cgroup_file(&kubepods, ("cpu", "cpu.shares"), "cpu.weight")
        .parse()
        .unwrap();
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !unified {
        assert_eq!(shares, (cpus * 1000 - 500) * 1024 / 1000);
    }
    let pid_max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        cgroup_file(&kubepods, ("pids", "pids.max"), "pids.max"),
        (pid_max - 1000).to_string()
    );
    if !unified {
        // The QoS classes are made right after kubepods: wait for their shares.
        wait_for(
            "besteffort's cpu shares",
            Duration::from_secs(10),
            || async {
                let file = format!("/sys/fs/cgroup/cpu{kubepods}/besteffort/cpu.shares");
                (std::fs::read_to_string(file).ok()?.trim() == "2").then_some(())
            },
        )
        .await;
    }
    // A Guaranteed pod, a Burstable one, and a BestEffort one forking past its limit.
    let guaranteed = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"},
        "spec": {"nodeName": "node-cg", "containers": [{"name": "c", "image": BUSYBOX,
            "command": ["sleep", "3600"],
            "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}}]}});
    let burstable = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
        "spec": {"nodeName": "node-cg", "containers": [{"name": "c", "image": BUSYBOX,
            "command": ["sleep", "3600"], "resources": {"requests": {"cpu": "300m"}}}]}});
    let forker = script_pod(
        "f",
        "(for i in $(seq 60); do sleep 600 & done); echo forked; exec sleep 600",
        json!({}),
        json!({}),
    );
    let forker = {
        let mut f = forker;
        f["spec"]["nodeName"] = json!("node-cg");
        f
    };
    for p in [&guaranteed, &burstable, &forker] {
        c.create("/api/v1/namespaces/default/pods", p).await;
    }
    let running = |name: &'static str| {
        let c = c.clone();
        async move {
            let p = pod(&c, name).await;
            p["status"]["containerStatuses"][0]["state"]["running"]
                .is_object()
                .then_some(p)
        }
    };
    let g = wait_for("g running", Duration::from_secs(60), || running("g")).await;
    wait_for("b running", Duration::from_secs(60), || running("b")).await;
    let f = wait_for("f running", Duration::from_secs(60), || running("f")).await;
    let g_cgroup = format!("{kubepods}/pod{}", g["metadata"]["uid"].as_str().unwrap());
    assert_eq!(
        cgroup_file(&g_cgroup, ("memory", "memory.limit_in_bytes"), "memory.max"),
        (64 << 20).to_string()
    );
    if unified {
        assert_eq!(cgroup_file(&g_cgroup, ("", ""), "cpu.max"), "25000 100000");
    } else {
        assert_eq!(
            cgroup_file(&g_cgroup, ("cpu", "cpu.cfs_quota_us"), ""),
            "25000"
        );
        assert_eq!(cgroup_file(&g_cgroup, ("cpu", "cpu.shares"), ""), "256");
        assert_eq!(
            cgroup_file(&format!("{kubepods}/burstable"), ("cpu", "cpu.shares"), ""),
            "307"
        );
    }
    assert_eq!(
        cgroup_file(&g_cgroup, ("pids", "pids.max"), "pids.max"),
        "40"
    );
    // The container's processes are in the pod's cgroup.
    let procs = |cg: &str| {
        let dir = if unified {
            format!("/sys/fs/cgroup{cg}")
        } else {
            format!("/sys/fs/cgroup/pids{cg}")
        };
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default())
            .collect::<String>()
            .lines()
            .count()
    };
    assert!(procs(&g_cgroup) >= 2, "sandbox and container in {g_cgroup}");
    // The fork loop stops at the pod's limit.
    let f_cgroup = format!(
        "{kubepods}/besteffort/pod{}",
        f["metadata"]["uid"].as_str().unwrap()
    );
    let logs = wait_for("forks refused", Duration::from_secs(30), || async {
        let (_, out, _) = s.kubectl(&["logs", "f"], None);
        out.contains("forked").then_some(out)
    })
    .await;
    assert!(logs.contains("can't fork"), "{logs}");
    let current: i64 = cgroup_file(&f_cgroup, ("pids", "pids.current"), "pids.current")
        .parse()
        .unwrap();
    assert!((30..=40).contains(&current), "pids.current {current}");
    // The pod's cgroup goes with the pod.
    s.kubectl_ok(&["delete", "pod", "g", "--grace-period=1"], None);
    wait_for("g's cgroup removed", Duration::from_secs(30), || async {
        (!std::path::Path::new(&format!("/sys/fs/cgroup/memory{g_cgroup}")).exists()
            && !std::path::Path::new(&format!("/sys/fs/cgroup{g_cgroup}")).exists())
        .then_some(())
    })
    .await;
    s.kubectl_ok(&["delete", "pod", "b", "f", "--grace-period=1"], None);
    // A cgroup v1 host is refused unless the kubelet is told otherwise (v1.35).
    if !unified {
        let out = std::process::Command::new(integration_tests::binary("kubelet"))
            .args([
                &format!("--kubeconfig={}", s.kubeconfig().display()),
                &format!("--container-runtime-endpoint={}", ctd.endpoint()),
                "--hostname-override=node-v1",
                &format!("--root-dir={}", k.dir.path().join("root3").display()),
                "--port=0",
                "--healthz-port=0",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("kubelet is configured to not run on a host using cgroup v1"),
            "{err}"
        );
    }
    // The systemd driver needs systemd.
    if !std::path::Path::new("/run/systemd/system").exists() {
        let out = std::process::Command::new(integration_tests::binary("kubelet"))
            .args([
                &format!("--kubeconfig={}", s.kubeconfig().display()),
                &format!("--container-runtime-endpoint={}", ctd.endpoint()),
                "--cgroup-driver=systemd",
                integration_tests::node::FAIL_CGROUP_V1,
                "--hostname-override=node-sd",
                &format!("--root-dir={}", k.dir.path().join("root2").display()),
                "--port=0",
                "--healthz-port=0",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("systemd is not running"), "{err}");
    }
    // The pods' cgroups go once their containers are gone.
    wait_for("pod cgroups removed", Duration::from_secs(60), || async {
        let dirs = |qos: &str| {
            std::fs::read_dir(format!("/sys/fs/cgroup/memory{kubepods}/{qos}"))
                .or_else(|_| std::fs::read_dir(format!("/sys/fs/cgroup{kubepods}/{qos}")))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .count()
        };
        (dirs("burstable") + dirs("besteffort") == 0).then_some(())
    })
    .await;
    drop(k);
    remove_cgroup_tree(&root);
}

/// Graceful node shutdown against a stand-in logind on a private bus: the kubelet
/// takes a delay inhibitor lock; on `PrepareForShutdown(true)` the node turns NotReady
/// ("node is shutting down"), new pods are refused (NodeShutdown), regular pods are
/// terminated before critical ones (Failed, reason Terminated, DisruptionTarget), and
/// the lock is released; a cancelled shutdown takes the lock again and the node is
/// Ready once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_shutdown_terminates_pods_by_priority() {
    use integration_tests::logind::FakeLogind;
    let s = TestApiServer::start(None, &["--disable-admission-plugins=ServiceAccount"]).await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let logind = FakeLogind::start(Duration::from_secs(30)).await;
    let config = logind.dir.path().join("kubelet.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\nauthorization:\n  mode: AlwaysAllow\nshutdownGracePeriod: 20s\nshutdownGracePeriodCriticalPods: 8s\n",
    )
    .unwrap();
    let config_flag = format!("--config={}", config.display());
    let _k = TestKubelet::start_with_env(
        &s.kubeconfig(),
        &ctd,
        "node-sd",
        None,
        "127.0.0.1",
        &[&config_flag],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &logind.address)],
    )
    .await;
    let held = || {
        let l = logind.locks.lock().unwrap();
        l.released.iter().filter(|r| !**r).count()
    };
    wait_for("the inhibitor lock", Duration::from_secs(30), || async {
        (held() == 1).then_some(())
    })
    .await;
    assert_eq!(
        logind.locks.lock().unwrap().calls[0],
        (
            "shutdown".to_string(),
            "kubelet".to_string(),
            "Kubelet needs time to handle node shutdown".to_string(),
            "delay".to_string()
        )
    );
    // A regular pod and a critical one, each taking a second to stop on SIGTERM.
    let script = "trap 'echo stopping; sleep 1; exit 0' TERM; while true; do sleep 0.2; done";
    let mk = |name: &str, ns: &str, class: Option<&str>| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "nodeName": "node-sd", "priorityClassName": class,
                "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", script]}]}})
    };
    c.create(
        "/api/v1/namespaces/default/pods",
        &mk("regular", "default", None),
    )
    .await;
    c.create(
        "/api/v1/namespaces/kube-system/pods",
        &mk("critical", "kube-system", Some("system-node-critical")),
    )
    .await;
    let get = |ns: &'static str, name: &'static str| {
        let c = c.clone();
        async move {
            c.get(&format!("/api/v1/namespaces/{ns}/pods/{name}"))
                .await
                .json()
        }
    };
    for (ns, name) in [("default", "regular"), ("kube-system", "critical")] {
        wait_for(
            &format!("{name} running"),
            Duration::from_secs(60),
            || async {
                let p = get(ns, name).await;
                p["status"]["containerStatuses"][0]["state"]["running"]
                    .is_object()
                    .then_some(())
            },
        )
        .await;
    }
    logind.prepare_for_shutdown(true).await;
    let ready = |want: &'static str| {
        let c = c.clone();
        async move {
            let n = c.get("/api/v1/nodes/node-sd").await.json();
            n["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready" && c["status"] == want)
                .cloned()
        }
    };
    let not_ready = wait_for("node NotReady", Duration::from_secs(15), || ready("False")).await;
    assert_eq!(not_ready["message"], "node is shutting down");
    // Both end Failed/Terminated; the critical pod after the regular one.
    let finished = |ns: &'static str, name: &'static str| async move {
        wait_for(
            &format!("{name} terminated"),
            Duration::from_secs(40),
            || async {
                let p = get(ns, name).await;
                (p["status"]["phase"] == "Failed"
                    && p["status"]["containerStatuses"][0]["state"]["terminated"].is_object())
                .then_some(p)
            },
        )
        .await
    };
    let regular = finished("default", "regular").await;
    let critical = finished("kube-system", "critical").await;
    for p in [&regular, &critical] {
        assert_eq!(p["status"]["reason"], "Terminated", "{}", p["status"]);
        assert_eq!(
            p["status"]["message"],
            "Pod was terminated in response to imminent node shutdown."
        );
        assert_eq!(condition(p, "DisruptionTarget"), "True");
    }
    let at = |p: &Value| {
        p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert!(
        at(&critical) >= at(&regular),
        "critical {} before regular {}",
        at(&critical),
        at(&regular)
    );
    // New pods are refused while the node shuts down.
    c.create(
        "/api/v1/namespaces/default/pods",
        &mk("late", "default", None),
    )
    .await;
    let late = wait_for("late rejected", Duration::from_secs(20), || async {
        let p = get("default", "late").await;
        (p["status"]["phase"] == "Failed").then_some(p)
    })
    .await;
    assert_eq!(late["status"]["reason"], "NodeShutdown");
    assert_eq!(
        late["status"]["message"],
        "Pod was rejected as the node is shutting down."
    );
    // The lock is let go once the pods are done; the node says why it is going.
    wait_for("the lock released", Duration::from_secs(20), || async {
        (held() == 0).then_some(())
    })
    .await;
    let events = c
        .get("/api/v1/namespaces/default/events?fieldSelector=reason%3DNodeShutdown")
        .await
        .json();
    assert!(
        events["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|e| e["message"]
                == "Shutdown manager detected shutdown event"
                && e["involvedObject"]["kind"] == "Node")),
        "{events}"
    );
    // Cancelled: the lock is taken again and the node is Ready.
    logind.prepare_for_shutdown(false).await;
    wait_for("the lock taken again", Duration::from_secs(15), || async {
        (held() == 1).then_some(())
    })
    .await;
    wait_for("node Ready again", Duration::from_secs(15), || {
        ready("True")
    })
    .await;
}
