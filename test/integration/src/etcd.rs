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
        // Ports come from `free_port`, which another test may take between
        // our probe and etcd's bind: an etcd that exits early is retried on
        // fresh ports; one that never listens fails with its own log.
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start(tls) {
                Ok(etcd) => return etcd,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start listening; its log:\n{last_log}");
    }

    fn try_start(tls: Option<&std::path::Path>) -> Result<Etcd, String> {
        let dir = tempfile::tempdir().unwrap();
        let [client, peer] = crate::free_ports::<2>();
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
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new("etcd")
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
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd must be installed (apt-get install etcd-server); .ci/run installs it");
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}\n{}", read_log()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not listening after 60 s\n{}", read_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Etcd {
            child,
            _dir: dir,
            endpoint,
        })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
