//! A stand-in for systemd-logind on a private D-Bus bus (Debian's `dbus-daemon`), for
//! the kubelet's graceful node shutdown: it hands out `delay` inhibitor locks (a pipe
//! whose far end tells when the kubelet lets go), reports `InhibitDelayMaxUSec`, and
//! announces shutdowns with `PrepareForShutdown`, as logind does on the system bus.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (what, who, why, mode) of each Inhibit call, and whether its lock was released.
#[derive(Default)]
pub struct Locks {
    pub calls: Vec<(String, String, String, String)>,
    pub released: Vec<bool>,
}

struct Manager {
    locks: Arc<Mutex<Locks>>,
    delay_usec: u64,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn inhibit(
        &self,
        what: &str,
        who: &str,
        why: &str,
        mode: &str,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedFd> {
        let (mut reader, writer) =
            std::io::pipe().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let index = {
            let mut l = self.locks.lock().unwrap();
            l.calls
                .push((what.into(), who.into(), why.into(), mode.into()));
            l.released.push(false);
            l.calls.len() - 1
        };
        let locks = self.locks.clone();
        std::thread::spawn(move || {
            // EOF once every copy of the write end (the kubelet's) is closed.
            let mut buf = [0u8; 1];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            locks.lock().unwrap().released[index] = true;
        });
        Ok(std::os::fd::OwnedFd::from(writer).into())
    }

    #[zbus(property, name = "InhibitDelayMaxUSec")]
    fn inhibit_delay_max_usec(&self) -> u64 {
        self.delay_usec
    }
}

pub struct FakeLogind {
    pub dir: tempfile::TempDir,
    pub address: String,
    daemon: Child,
    conn: zbus::Connection,
    pub locks: Arc<Mutex<Locks>>,
}

impl FakeLogind {
    /// A bus of its own with logind's name taken; `delay`: its InhibitDelayMaxUSec.
    pub async fn start(delay: Duration) -> FakeLogind {
        let dir = tempfile::Builder::new()
            .prefix("logind")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("system_bus_socket");
        let address = format!("unix:path={}", socket.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("starting dbus-daemon (Debian package dbus-daemon)");
        crate::wait_for("the bus socket", Duration::from_secs(10), || async {
            socket.exists().then_some(())
        })
        .await;
        let locks = Arc::new(Mutex::new(Locks::default()));
        let manager = Manager {
            locks: locks.clone(),
            delay_usec: delay.as_micros() as u64,
        };
        let conn = zbus::connection::Builder::address(address.as_str())
            .unwrap()
            .name("org.freedesktop.login1")
            .unwrap()
            .serve_at("/org/freedesktop/login1", manager)
            .unwrap()
            .build()
            .await
            .expect("serving the fake logind");
        FakeLogind {
            dir,
            address,
            daemon,
            conn,
            locks,
        }
    }

    /// `PrepareForShutdown(start)`, as logind sends it when a shutdown begins (true)
    /// or is cancelled (false).
    pub async fn prepare_for_shutdown(&self, start: bool) {
        self.conn
            .emit_signal(
                None::<()>,
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager",
                "PrepareForShutdown",
                &(start,),
            )
            .await
            .unwrap();
    }
}

impl Drop for FakeLogind {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
