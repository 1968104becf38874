//! A real etcd (Debian's `etcd-server`) on loopback ports in a temp dir.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Etcd {
    pub fn start() -> Etcd {
        Self::start_with(None)
    }

    /// etcd serving TLS with the kubeadm etcd PKI under `pki` (`etcd/ca.crt`,
    /// `etcd/server.{crt,key}`), requiring client certificates from that CA.
    pub fn start_tls(pki: &std::path::Path) -> Etcd {
        Self::start_with(Some(pki))
    }

    fn start_with(tls: Option<&std::path::Path>) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (crate::free_port(), crate::free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{client}");
        let mut extra: Vec<String> = Vec::new();
        if let Some(pki) = tls {
            let p = |f: &str| pki.join(f).display().to_string();
            extra = vec![
                format!("--cert-file={}", p("etcd/server.crt")),
                format!("--key-file={}", p("etcd/server.key")),
                format!("--trusted-ca-file={}", p("etcd/ca.crt")),
                "--client-cert-auth=true".into(),
            ];
        }
        let child = Command::new("etcd")
            .args(&extra)
            .args([
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd must be installed (apt-get install etcd-server); .ci/run installs it");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Etcd {
            child,
            _dir: dir,
            endpoint,
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
