//! Running our kubeadm in tests, and an apiserver on the PKI it makes.

use crate::machine::{Killed, Machine};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs kubeadm; (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(crate::binary("kubeadm"))
        .args(args)
        .output()
        .expect("running kubeadm");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs kubeadm, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let (ok, out, err) = run(args);
    assert!(ok, "kubeadm {args:?}: {out}{err}");
    out
}

/// Upstream's documented way to compute `--discovery-token-ca-cert-hash`.
pub fn openssl_ca_hash(ca: &Path) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -in {} -noout | openssl pkey -pubin -outform der | sha256sum",
            ca.display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// The apiserver flags kubeadm's manifest passes for the PKI under `pki`.
pub fn apiserver_flags(pki: &Path) -> Vec<String> {
    let p = |f: &str| pki.join(f).display().to_string();
    vec![
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!("--client-ca-file={}", p("ca.crt")),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        "--authorization-mode=Node,RBAC".into(),
        "--enable-bootstrap-token-auth".into(),
    ]
}

/// Builds build/build-images.py's archive (the control-plane and add-on images) from
/// the binaries under test into `dir`; its path.
pub fn build_cluster_images(dir: &Path) -> std::path::PathBuf {
    let bin_dir = crate::binary("kube-apiserver");
    build_images_as(dir, bin_dir.parent().unwrap(), "v1.35.0")
}

/// The same archive from the binaries in `bin_dir`, tagged `version`.
pub fn build_images_as(dir: &Path, bin_dir: &Path, version: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/build-images.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--version")
        .arg(version)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "build/build-images.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    dir.join("kubernetes-images.tar")
}

/// `kubectl ... -o json` parsed, or kubectl's complaint.
pub fn get_json(kubeconfig: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let (ok, out) = kubectl(kubeconfig, &[args, &["-o", "json"]].concat());
    if !ok {
        return Err(out);
    }
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

/// Whether an object's condition `kind` is True.
pub fn condition(obj: &serde_json::Value, kind: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// Polls `f` every 250 ms until it succeeds, failing the test with its last error after
/// `secs` seconds.
pub async fn wait_ok<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// `kubectl --kubeconfig <kubeconfig> <args>`: (success, stdout + stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("kubectl");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The kubelet as kubeadm's systemd drop-in starts it: the kubeconfig and config flags,
/// `$KUBELET_KUBEADM_ARGS` from `/var/lib/kubelet/kubeadm-flags.env` (read from
/// `var_lib_kubelet`, the machine's directory as the test sees it), then `extra` (the
/// drop-in's `$KUBELET_EXTRA_ARGS`).
pub fn kubelet_args(var_lib_kubelet: &Path, extra: &[&str]) -> Vec<String> {
    let env = std::fs::read_to_string(var_lib_kubelet.join("kubeadm-flags.env"))
        .expect("kubeadm-flags.env");
    let kubeadm_args = env
        .trim()
        .strip_prefix("KUBELET_KUBEADM_ARGS=")
        .expect("KUBELET_KUBEADM_ARGS")
        .trim_matches('"')
        .to_string();
    let mut args = vec![
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".to_string(),
        "--kubeconfig=/etc/kubernetes/kubelet.conf".into(),
        "--config=/var/lib/kubelet/config.yaml".into(),
    ];
    args.extend(kubeadm_args.split_whitespace().map(String::from));
    // The test machine's cgroup v1, which a v1.35 kubelet refuses by default.
    args.push(crate::node::FAIL_CGROUP_V1.into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `kubeadm <args>` on `machine`, starting its kubelet as systemd would (see
/// [`kubelet_args`]; `extra` as `$KUBELET_EXTRA_ARGS`) once kubeadm has written the
/// kubelet's configuration; kubeadm's stdout (it must succeed) and the kubelet.
pub async fn kubeadm_with_kubelet(
    machine: &Machine,
    args: &[String],
    extra: &[&str],
    log: &Path,
) -> (String, Killed) {
    let mut kubeadm = machine
        .cmd(crate::binary("kubeadm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !machine.var().join("config.yaml").exists() {
        if let Some(st) = kubeadm.try_wait().unwrap() {
            let o = kubeadm.wait_with_output().unwrap();
            panic!(
                "kubeadm {args:?} exited with {st}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "kubeadm wrote no kubelet configuration"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kubelet = Killed(
        machine
            .cmd(crate::binary("kubelet"))
            .args(kubelet_args(&machine.var(), extra))
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let o = tokio::task::spawn_blocking(move || kubeadm.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "kubeadm {args:?}: {out}{}\nkubelet: {}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (out, kubelet)
}

/// `kubeadm reset --force` on `machine` (its kubelet already stopped: there is no
/// systemd to stop it); it must succeed and leave none of kubeadm's files in the
/// machine's `/etc/kubernetes`, `/var/lib/kubelet` and `/var/lib/etcd`, no mounts under
/// `/var/lib/kubelet` and no Kubernetes iptables chains or nftables tables. Its stdout.
pub fn reset_leaves_nothing(machine: &Machine, cri_socket: &str) -> String {
    let o = machine
        .cmd(crate::binary("kubeadm"))
        .args(["reset", "--force", "--cri-socket", cri_socket])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for dir in ["etc-kubernetes", "var-lib-kubelet", "var-lib-etcd"] {
        assert_eq!(
            Machine::files_under(&machine.root.path().join(dir)),
            Vec::<String>::new(),
            "{out}"
        );
    }
    let on_machine = |args: &[&str]| {
        let o = machine.cmd(args[0]).args(&args[1..]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mounts: Vec<String> = on_machine(&["cat", "/proc/self/mounts"])
        .lines()
        .filter(|l| l.contains("/var/lib/kubelet/"))
        .map(String::from)
        .collect();
    assert_eq!(mounts, Vec::<String>::new(), "{out}");
    for save in ["iptables-save", "ip6tables-save"] {
        let rules = on_machine(&[save]);
        assert!(!rules.contains("KUBE-"), "{save}:\n{rules}\n{out}");
    }
    let tables = on_machine(&["nft", "list", "tables"]);
    assert!(!tables.contains("kube-proxy"), "{tables}\n{out}");
    out
}
