//! systemd-logind over D-Bus (upstream `pkg/kubelet/nodeshutdown/systemd`): the inhibit
//! delay logind allows, a `delay` inhibitor lock on shutdown, its
//! `PrepareForShutdown` signal, and the drop-in that raises `InhibitDelayMaxSec`.
//! The system bus is found as every D-Bus client finds it (`DBUS_SYSTEM_BUS_ADDRESS`,
//! else `/run/dbus/system_bus_socket`).

use futures::StreamExt;
use std::os::fd::OwnedFd;
use std::time::Duration;

const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";
pub const LOGIND_CONF_DIR: &str = "/etc/systemd/logind.conf.d";
const KUBELET_LOGIND_CONF: &str = "99-kubelet.conf";

pub struct Logind {
    manager: zbus::Proxy<'static>,
    conn: zbus::Connection,
}

impl Logind {
    pub async fn connect() -> Result<Logind, String> {
        let conn = zbus::Connection::system()
            .await
            .map_err(|e| format!("connecting to the system bus: {e}"))?;
        let manager = zbus::Proxy::new(&conn, LOGIND, LOGIND_PATH, LOGIND_MANAGER)
            .await
            .map_err(|e| format!("logind manager: {e}"))?;
        Ok(Logind { manager, conn })
    }

    /// logind's `InhibitDelayMaxUSec`: the longest a delay lock holds a shutdown back.
    pub async fn current_inhibit_delay(&self) -> Result<Duration, String> {
        let usec: u64 = self
            .manager
            .get_property("InhibitDelayMaxUSec")
            .await
            .map_err(|e| format!("failed reading InhibitDelayMaxUSec property from logind: {e}"))?;
        Ok(Duration::from_micros(usec))
    }

    /// A `delay` inhibitor lock on shutdown: the shutdown waits while the fd is open.
    pub async fn inhibit_shutdown(&self) -> Result<OwnedFd, String> {
        let fd: zbus::zvariant::OwnedFd = self
            .manager
            .call(
                "Inhibit",
                &(
                    "shutdown",
                    "kubelet",
                    "Kubelet needs time to handle node shutdown",
                    "delay",
                ),
            )
            .await
            .map_err(|e| format!("failed creating systemd inhibitor: {e}"))?;
        Ok(fd.into())
    }

    /// SIGHUP to systemd-logind through systemd, so it reads its configuration again.
    pub async fn reload_logind_conf(&self) -> Result<(), String> {
        let systemd = zbus::Proxy::new(
            &self.conn,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
        )
        .await
        .map_err(|e| format!("unable to reload logind conf: {e}"))?;
        systemd
            .call_method("KillUnit", &("systemd-logind.service", "all", 1i32))
            .await
            .map_err(|e| format!("unable to reload logind conf: {e}"))?;
        Ok(())
    }

    /// `PrepareForShutdown(start)` signals: true when a shutdown begins, false when it
    /// was cancelled.
    pub async fn monitor_shutdown(
        &self,
    ) -> Result<impl futures::Stream<Item = bool> + use<>, String> {
        let stream = self
            .manager
            .receive_signal("PrepareForShutdown")
            .await
            .map_err(|e| format!("failed to monitor shutdown: {e}"))?;
        Ok(stream.filter_map(|m| async move {
            match m.body().deserialize::<bool>() {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::error!(error = %e, "Failed obtaining shutdown event, PrepareForShutdown event was not bool type as expected");
                    None
                }
            }
        }))
    }
}

/// The logind drop-in that raises `InhibitDelayMaxSec` to `delay`.
pub fn override_inhibit_delay(dir: &std::path::Path, delay: Duration) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("failed creating {} directory: {e}", dir.display()))?;
    let path = dir.join(KUBELET_LOGIND_CONF);
    let text = format!(
        "# Kubelet logind override\n[Login]\nInhibitDelayMaxSec={}\n",
        delay.as_secs()
    );
    std::fs::write(&path, text).map_err(|e| {
        format!(
            "failed writing logind shutdown inhibit override file {}: {e}",
            path.display()
        )
    })
}
