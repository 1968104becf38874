//! A node for tests: a real containerd (its own root, state, socket and CNI config
//! under a temp dir: a bridge with a per-node subnet, portmap, loopback) with the test
//! images imported, and our kubelet against it. Needs root, containerd, runc and the
//! CNI plugins (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The images the node tests use (built by `hack/build-test-images.py`).
pub const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.36";
pub const PAUSE: &str = "registry.k8s.io/pause:3.10";

/// Distinct bridge names and subnets for containerds running side by side.
static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct TestContainerd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub subnet: String,
}

fn images_dir() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("test-images")
}

/// Builds the OCI archives once per target dir.
fn ensure_images() -> PathBuf {
    let dir = images_dir();
    let lock = dir.with_extension("lock");
    let _ = std::fs::create_dir_all(&dir);
    // Several test binaries may race: build under an exclusive lock file.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if dir.join("pause.tar").exists() && dir.join("busybox.tar").exists() {
            return dir;
        }
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .is_ok()
        {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/build-test-images.py");
            let out = Command::new("python3")
                .arg(script)
                .arg(&dir)
                .output()
                .expect("python3");
            let _ = std::fs::remove_file(&lock);
            assert!(
                out.status.success(),
                "building test images: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return dir;
        }
        assert!(Instant::now() < deadline, "test images not built");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cmd`, run inside network namespace `netns` when given. `nsenter --net` enters only
/// the network namespace (`ip netns exec` would also remount /sys and hide the cgroup
/// mounts runc needs).
pub fn command_in(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/var/run/netns/{ns}"))
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl TestContainerd {
    pub async fn start() -> TestContainerd {
        let n = (std::process::id() % 200 + NEXT.fetch_add(1, Ordering::SeqCst) * 7) % 250;
        Self::start_with(None, n).await
    }

    /// A containerd in `netns` (if given) whose pods get `10.244.<n>.0/24`.
    pub async fn start_with(netns: Option<&str>, n: u32) -> TestContainerd {
        Self::start_launched(|| command_in(netns, "containerd"), n).await
    }

    /// A containerd started by `launch` (e.g. on a kubeadm test machine) whose pods get
    /// `10.244.<n>.0/24`.
    pub async fn start_launched(launch: impl Fn() -> Command, n: u32) -> TestContainerd {
        Self::start_inner(launch, n, None).await
    }

    /// A containerd started by `launch` that reads its CNI configuration from
    /// `cni_conf_dir` (a pod network add-on writes it there), as a kubeadm node's does.
    pub async fn start_with_cni_dir(
        launch: impl Fn() -> Command,
        cni_conf_dir: &str,
    ) -> TestContainerd {
        Self::start_inner(launch, 0, Some(cni_conf_dir)).await
    }

    async fn start_inner(
        launch: impl Fn() -> Command,
        n: u32,
        cni_conf_dir: Option<&str>,
    ) -> TestContainerd {
        let images = ensure_images();
        let dir = tempfile::Builder::new()
            .prefix("ctd")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let socket = d.join("containerd.sock");
        let subnet = format!("10.244.{n}.0/24");
        std::fs::create_dir_all(d.join("cni")).unwrap();
        let net = format!(
            "ktest{}",
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("ctd")
                .to_lowercase()
        );
        let bridge: String = format!("kb{n}");
        let conf_dir = match cni_conf_dir {
            Some(c) => c.to_string(),
            None => d.join("cni").display().to_string(),
        };
        if cni_conf_dir.is_none() {
            std::fs::write(
            d.join("cni/10-test.conflist"),
            serde_json::json!({
                "cniVersion": "1.0.0", "name": net,
                "plugins": [
                    {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": d.join("ipam").display().to_string()}},
                    {"type": "portmap", "capabilities": {"portMappings": true}},
                    {"type": "loopback"},
                ]
            })
            .to_string(),
        )
        .unwrap();
        }
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Nested machines (CI sandboxes) may not lower oom_score_adj below our own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  # Per-registry settings (hosts.toml), for registries tests start.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            cni = conf_dir,
            certs = d.join("certs.d").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = launch()
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting containerd (is it installed?)");
        let c = TestContainerd {
            child: Some(child),
            dir,
            socket,
            subnet,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                c.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for img in ["pause", "busybox"] {
            let out = c.ctr(&[
                "images",
                "import",
                &images.join(format!("{img}.tar")).display().to_string(),
            ]);
            assert!(out.0, "importing {img}: {}", out.1);
        }
        c
    }

    /// Imports an OCI archive (e.g. build/build-images.py's) into the k8s.io namespace.
    pub fn import(&self, archive: &Path) {
        let out = self.ctr(&["images", "import", &archive.display().to_string()]);
        assert!(out.0, "importing {}: {}", archive.display(), out.1);
    }

    /// Lets the runtime pull from the plain-HTTP registry at `host` (`127.0.0.1:port`).
    pub fn trust_plain_http_registry(&self, host: &str) {
        let dir = self.dir.path().join("certs.d").join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"http://{host}\"\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
    }

    pub fn ctr(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("ctr");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Task ids still running (for cleanup checks).
    pub fn running_tasks(&self) -> Vec<String> {
        self.ctr(&["tasks", "ls", "-q"])
            .1
            .lines()
            .map(String::from)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        // The pods' network namespaces (containerd's `cni-*` under /var/run/netns), which
        // would otherwise outlive it.
        let mut netns = Vec::new();
        for id in self
            .ctr(&["containers", "ls", "-q"])
            .1
            .lines()
            .filter(|l| !l.is_empty())
        {
            let info: serde_json::Value =
                serde_json::from_str(&self.ctr(&["containers", "info", id]).1).unwrap_or_default();
            for ns in info["Spec"]["linux"]["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if ns["type"] == "network"
                    && let Some(name) = ns["path"]
                        .as_str()
                        .and_then(|p| p.strip_prefix("/var/run/netns/"))
                {
                    netns.push(name.to_string());
                }
            }
        }
        // Everything it started goes with it.
        for t in self.running_tasks() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", &t]);
        }
        std::thread::sleep(Duration::from_millis(200));
        for t in self.running_tasks() {
            let _ = self.ctr(&["tasks", "rm", "-f", &t]);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        netns.sort();
        netns.dedup();
        for n in netns {
            let _ = Command::new("ip").args(["netns", "del", &n]).output();
        }
        // Sandboxes' mounts left by the runtime.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("grep ' {0}' /proc/mounts | awk '{{print $2}}' | sort -r | xargs -r umount -l 2>/dev/null", self.dir.path().display()))
            .status();
    }
}

pub struct TestKubelet {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub node: String,
    pub port: u16,
    pub healthz_port: u16,
    /// The node's address (its API and healthz listen there).
    pub ip: String,
    netns: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// Whether the kubelet may run on this host's cgroups: v1.35 refuses cgroup v1 unless
/// told otherwise (`failCgroupV1`); the test machines may be v1.
pub const FAIL_CGROUP_V1: &str = "--fail-cgroupv1=false";

impl TestKubelet {
    /// Starts our kubelet as node `node` against `containerd`, serving on loopback; its
    /// API allows anonymous access (upstream's flag defaults) unless `extra` says more.
    pub async fn start(
        kubeconfig: &Path,
        containerd: &TestContainerd,
        node: &str,
        extra: &[&str],
    ) -> TestKubelet {
        Self::start_with(kubeconfig, containerd, node, None, "127.0.0.1", extra).await
    }

    /// The same inside network namespace `netns` with the node address `ip`.
    pub async fn start_with(
        kubeconfig: &Path,
        containerd: &TestContainerd,
        node: &str,
        netns: Option<&str>,
        ip: &str,
        extra: &[&str],
    ) -> TestKubelet {
        Self::start_with_env(kubeconfig, containerd, node, netns, ip, extra, &[]).await
    }

    /// The same with environment variables for the kubelet (test hooks).
    pub async fn start_with_env(
        kubeconfig: &Path,
        containerd: &TestContainerd,
        node: &str,
        netns: Option<&str>,
        ip: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestKubelet {
        let dir = tempfile::Builder::new()
            .prefix("kubelet")
            .tempdir_in("/tmp")
            .unwrap();
        let [port, healthz_port] = crate::free_ports::<2>();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let mut args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--container-runtime-endpoint={}", containerd.endpoint()),
            format!("--hostname-override={node}"),
            format!("--node-ip={ip}"),
            format!("--address={ip}"),
            format!("--port={port}"),
            format!("--healthz-port={healthz_port}"),
            format!("--healthz-bind-address={ip}"),
            format!("--root-dir={}", dir.path().join("root").display()),
            format!("--pod-logs-dir={}", dir.path().join("logs").display()),
            format!("--pod-manifest-path={}", manifests.display()),
            FAIL_CGROUP_V1.into(),
            "--node-status-update-frequency=1s".into(),
            "--sync-frequency=2s".into(),
            "--file-check-frequency=1s".into(),
        ];
        // The test machine's disk may sit near the default 10 % free (a CI build fills it),
        // where every pod would be evicted for DiskPressure: tests that are not about
        // eviction turn the disk signal off with 0 %, as kind's nodes do.
        if !extra.iter().any(|a| a.starts_with("--eviction-hard")) {
            args.push("--eviction-hard=memory.available<100Mi,nodefs.available<0%".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut k = TestKubelet {
            child: None,
            dir,
            node: node.into(),
            port,
            healthz_port,
            ip: ip.to_string(),
            netns: netns.map(String::from),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        k.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((ip, healthz_port)).is_err() {
            if let Some(Ok(Some(st))) = k.child.as_mut().map(|c| c.try_wait()) {
                panic!("kubelet exited with {st}: {}", k.log());
            }
            assert!(
                Instant::now() < deadline,
                "kubelet did not start: {}",
                k.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        k
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("kubelet.log"))
            .unwrap();
        let child = command_in(self.netns.as_deref(), crate::binary("kubelet"))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info,kubelet=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kubelet");
        self.child = Some(child);
    }

    /// The `--pod-logs-dir` the kubelet writes container logs under.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// Starts the kubelet again after `terminate` (its pods kept running meanwhile).
    pub async fn restart_stopped(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((self.ip.as_str(), self.healthz_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kubelet did not restart: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubelet.log")).unwrap_or_default()
    }

    /// SIGTERM and wait (clean shutdown).
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe_kill(c.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let all = std::env::var("KUBELET_TEST_LOG").is_ok();
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| all || l.contains("WARN") || l.contains("ERROR"))
                .filter(|l| !l.contains("cert bypassed"))
                .collect();
            eprintln!(
                "--- kubelet warnings and errors (last 40) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("grep ' {0}' /proc/mounts | awk '{{print $2}}' | sort -r | xargs -r umount -l 2>/dev/null", self.dir.path().display()))
            .status();
    }
}
