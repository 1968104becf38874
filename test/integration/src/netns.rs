//! Network namespaces for tests (iproute2's `ip netns`): a test thread can move into
//! one, so that the servers it starts bind to that namespace's loopback and the rules
//! kube-proxy programs stay inside it.

use std::process::Command;

pub struct NetNs {
    pub name: String,
}

const CLONE_NEWNET: i32 = 0x4000_0000;

unsafe extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl NetNs {
    /// A fresh namespace with its loopback up.
    pub fn new(prefix: &str) -> NetNs {
        let name = format!("{prefix}-{}-{}", std::process::id(), crate::free_port());
        run(&["ip", "netns", "add", &name]);
        run(&[
            "ip", "netns", "exec", &name, "ip", "link", "set", "lo", "up",
        ]);
        NetNs { name }
    }

    /// Moves the calling thread into the namespace; processes it starts from now on
    /// live there too.
    pub fn enter(&self) {
        Self::enter_by_name(&self.name);
    }

    /// The same for a namespace known by name (from another thread).
    /// Gives the calling thread's namespace an "uplink": a veth pair `eth0` / `eth0-peer`
    /// with these addresses (`a.b.c.d/len`) on `eth0` and the default route through it.
    pub fn add_uplink(addrs: &[&str]) {
        run(&[
            "ip",
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0-peer",
        ]);
        for a in addrs {
            run(&["ip", "addr", "add", a, "dev", "eth0"]);
        }
        run(&["ip", "link", "set", "eth0", "up"]);
        run(&["ip", "link", "set", "eth0-peer", "up"]);
        run(&["ip", "route", "add", "default", "dev", "eth0"]);
    }

    pub fn enter_by_name(name: &str) {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("netns file");
        // SAFETY: setns on an open namespace fd affects only this thread.
        let rc = unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
