//! The real kube-apiserver binary on a random loopback port with its own temp dir.

use crate::client::Client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestApiServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    args: Vec<String>,
    pub client: Client,
}

impl TestApiServer {
    /// Starts on the embedded store (`etcd: None`) or the given etcd; `extra` flags appended.
    pub async fn start(etcd: Option<&str>, extra: &[&str]) -> TestApiServer {
        Self::start_with_token(etcd, extra, None).await
    }

    /// Starts with the test client sending a bearer token (for servers that refuse
    /// anonymous requests).
    pub async fn start_with_token(
        etcd: Option<&str>,
        extra: &[&str],
        token: Option<&str>,
    ) -> TestApiServer {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let mut args = vec![
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.path().join("certs").display()),
            format!("--data-dir={}", dir.path().join("data").display()),
        ];
        // Loopback unless the test puts the server elsewhere (inside its own namespace).
        if !extra.iter().any(|a| a.starts_with("--bind-address")) {
            args.push("--bind-address=127.0.0.1".to_string());
        }
        if let Some(e) = etcd {
            args.push(format!("--etcd-servers={e}"));
            // Each test gets its own keyspace in a shared etcd (unless servers share one).
            if !extra.iter().any(|a| a.starts_with("--etcd-prefix")) {
                args.push(format!("--etcd-prefix=/registry-{port}"));
            }
        }
        // Without a controller-manager no namespace gets its `default` ServiceAccount, so
        // the ServiceAccount admission plugin (which requires it) is off unless a test
        // chooses the plugins itself.
        if !extra.iter().any(|a| a.contains("-admission-plugins")) {
            args.push("--disable-admission-plugins=ServiceAccount".to_string());
        }
        // Like kubeadm's static pod manifest: privileged containers allowed unless a test
        // says otherwise.
        if !extra.iter().any(|a| a.starts_with("--allow-privileged")) {
            args.push("--allow-privileged=true".to_string());
        }
        // Callers that bring no credentials act as a cluster admin through a token file
        // (kubectl would otherwise prompt for a password).
        let default_token = "test-admin-token";
        let token = match token {
            None if !extra.iter().any(|a| a.starts_with("--token-auth-file")) => {
                let file = dir.path().join("test-tokens.csv");
                std::fs::write(
                    &file,
                    format!("{default_token},test-admin,0,system:masters\n"),
                )
                .unwrap();
                args.push(format!("--token-auth-file={}", file.display()));
                Some(default_token)
            }
            t => t,
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = TestApiServer {
            child: None,
            dir,
            port,
            args,
            client: Client::new(port).with_token(token),
        };
        s.spawn().await;
        s.write_kubeconfig(token);
        s
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("apiserver.log"))
            .unwrap();
        let child = Command::new(crate::binary("kube-apiserver"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kube-apiserver");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.client.try_status("/readyz").await == Some(200) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kube-apiserver exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id (for RSS readings).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The default kubeconfig: the given token, else no credentials (anonymous).
    fn write_kubeconfig(&self, token: Option<&str>) {
        let user = match token {
            Some(t) => format!("\n    token: {t}"),
            None => " {}".to_string(),
        };
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\n  name: test\ncontexts:\n- context:\n    cluster: test\n    user: test\n  name: test\ncurrent-context: test\nusers:\n- name: test\n  user:{user}\n",
            self.port
        );
        std::fs::write(self.kubeconfig(), cfg).unwrap();
    }

    /// Kills with SIGKILL (no chance to flush anything) and starts again on the same state.
    pub async fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn().await;
    }

    /// Kills with SIGKILL: the server has no chance to tell anyone it leaves.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again after `terminate` or `kill9`, on the same state and port.
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A kubeconfig for this server with the given `user:` entry (YAML lines indented
    /// four spaces: `token: ...`, `client-certificate: ...`).
    pub fn user_kubeconfig(&self, name: &str, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\n  name: c\ncontexts:\n- context: {{cluster: c, user: u}}\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user:\n{user}",
            self.port
        );
        std::fs::write(&path, cfg).unwrap();
        path
    }

    /// Runs the real kubectl against this server; returns (exit ok, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        self.kubectl_bin("kubectl", args, stdin)
    }

    /// The same with a given kubectl binary (another release).
    pub fn kubectl_bin(
        &self,
        bin: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (bool, String, String) {
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("kubectl must be installed");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {args:?} failed: {err}\n{out}");
        out
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let problems: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            let tail = &problems[problems.len().saturating_sub(20)..];
            eprintln!(
                "--- kube-apiserver warnings and errors (last 20) ---\n{}",
                tail.join("\n")
            );
        }
    }
}

/// The real kubectl with a given kubeconfig and standard input.
pub fn kubectl_as(kubeconfig: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
