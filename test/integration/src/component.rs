//! Component processes for tests (kube-scheduler, kube-controller-manager): our binary
//! against a test apiserver, its secure port on loopback with authentication and
//! authorization delegated to that apiserver, killed when dropped.

use crate::client::Client;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestComponent {
    binary: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

pub struct TestScheduler;

impl TestScheduler {
    pub async fn start(kubeconfig: &Path, extra: &[&str]) -> TestComponent {
        TestComponent::start("kube-scheduler", kubeconfig, extra).await
    }
}

pub struct TestControllerManager;

impl TestControllerManager {
    /// Starts with each controller acting as its own ServiceAccount (as kubeadm runs
    /// it), so that tests against an RBAC apiserver prove the controllers need no more
    /// than upstream's `system:controller:*` roles.
    pub async fn start(kubeconfig: &Path, extra: &[&str]) -> TestComponent {
        let mut args = vec!["--use-service-account-credentials=true"];
        args.extend(
            extra
                .iter()
                .filter(|a| !a.starts_with("--use-service-account-credentials")),
        );
        if let Some(a) = extra
            .iter()
            .find(|a| a.starts_with("--use-service-account-credentials"))
        {
            args[0] = a;
        }
        TestComponent::start("kube-controller-manager", kubeconfig, &args).await
    }
}

impl TestComponent {
    /// Starts with `--kubeconfig` (leader election off unless `extra` says otherwise) and
    /// waits until `/readyz` answers 200 unless it waits for a lease.
    pub async fn start(binary: &'static str, kubeconfig: &Path, extra: &[&str]) -> TestComponent {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let mut args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.path().display()),
            format!("--authentication-kubeconfig={}", kubeconfig.display()),
            format!("--authorization-kubeconfig={}", kubeconfig.display()),
        ];
        if !extra
            .iter()
            .any(|a| a.starts_with("--leader-elect=") || a.starts_with("--config"))
        {
            args.push("--leader-elect=false".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::fs::File::create(dir.path().join("component.log")).unwrap();
        let child = Command::new(crate::binary(binary))
            .args(&args)
            .env("RUST_LOG", "info,scheduler=debug,controller=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let mut s = TestComponent {
            binary,
            child: Some(child),
            dir,
            port,
        };
        if !extra.contains(&"--leader-elect=true") {
            s.wait_ready().await;
        }
        s
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = Client::new(self.port);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && client.get("/readyz").await.status == 200
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("{} exited with {status}: {}", self.binary, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready: {}",
                self.binary,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("component.log")).unwrap_or_default()
    }

    /// `/metrics`, as the test harness's cluster admin (the secure port delegates
    /// authentication and authorization to the apiserver).
    pub async fn metrics(&self) -> String {
        let r = Client::new(self.port)
            .with_token(Some("test-admin-token"))
            .get("/metrics")
            .await;
        assert_eq!(r.status, 200, "/metrics: {}", r.text());
        r.text()
    }

    /// SIGKILL, as a crashed leader.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for TestComponent {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the component logged about errors.
        if std::thread::panicking() {
            let log = self.log();
            let problems: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("cert bypassed") && !l.contains("healthz"))
                .collect();
            let tail = &problems[problems.len().saturating_sub(40)..];
            eprintln!(
                "--- component warnings and errors (last 40) ---\n{}",
                tail.join("\n")
            );
        }
    }
}
