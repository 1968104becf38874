//! A "machine" for kubeadm tests: its own `/etc/kubernetes`, `/var/lib/kubelet`,
//! `/var/lib/etcd`, `/etc/cni/net.d`, `/var/lib/cni` and `/var/log/pods` (temp dirs bind-mounted in a private mount namespace, held open by
//! a sleeping process) in the network namespace of the thread that creates it, or in a
//! named one with a host name of its own (a UTS namespace: leader-election identities and
//! host-network pods see the machine's name).
//! Commands run on it through `nsenter`, so kubeadm, the kubelet and containerd see
//! the machine's files at upstream's paths.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The directories a kubeadm node owns.
pub const DIRS: [(&str, &str); 6] = [
    ("etc-kubernetes", "/etc/kubernetes"),
    ("var-lib-kubelet", "/var/lib/kubelet"),
    ("var-lib-etcd", "/var/lib/etcd"),
    ("etc-cni-net.d", "/etc/cni/net.d"),
    ("var-lib-cni", "/var/lib/cni"),
    ("var-log-pods", "/var/log/pods"),
];

pub struct Machine {
    pub root: tempfile::TempDir,
    holder: Child,
}

impl Machine {
    /// A machine in the calling thread's network namespace.
    pub fn new() -> Machine {
        Self::new_in(None)
    }

    /// A machine in network namespace `netns` (a name under /var/run/netns).
    pub fn new_in(netns: Option<&str>) -> Machine {
        Self::new_host(netns, None)
    }

    /// A machine in network namespace `netns`, named `hostname` when given.
    pub fn new_host(netns: Option<&str>, hostname: Option<&str>) -> Machine {
        let root = tempfile::Builder::new()
            .prefix("machine")
            .tempdir_in("/tmp")
            .unwrap();
        let mut binds = Vec::new();
        for (d, at) in DIRS {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
            // The mount points exist on any kubeadm host (the packages create them).
            std::fs::create_dir_all(at).unwrap();
            binds.push(format!("mount --bind {}/{d} {at}", root.path().display()));
        }
        let mut holder = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/var/run/netns/{ns}")).arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        if let Some(h) = hostname {
            holder.arg("--uts");
            binds.push(format!("hostname {h}"));
        }
        let holder = holder
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{} && exec sleep 36000", binds.join(" && ")))
            .spawn()
            .unwrap();
        let m = Machine { root, holder };
        // Mounted once the holder sleeps: its /etc/kubernetes is the machine's.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            std::fs::write(m.etc().join(".probe"), "").unwrap();
            let seen = m
                .cmd("test")
                .args(["-e", "/etc/kubernetes/.probe"])
                .status()
                .unwrap();
            if seen.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the machine's mounts did not appear"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::remove_file(m.etc().join(".probe")).unwrap();
        m
    }

    /// The machine's `/etc/kubernetes`, as seen from the test.
    pub fn etc(&self) -> PathBuf {
        self.root.path().join("etc-kubernetes")
    }

    /// The machine's `/var/lib/kubelet`, as seen from the test.
    pub fn var(&self) -> PathBuf {
        self.root.path().join("var-lib-kubelet")
    }

    /// `program` run on the machine (its mounts and network).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "-n", "-u", "--"])
            .arg(program);
        c
    }

    /// The files left under `dir` (recursively; directories are not counted).
    pub fn files_under(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(Self::files_under(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
