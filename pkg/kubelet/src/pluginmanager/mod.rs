//! The plugin manager: plugins announce themselves with a socket in
//! `<root-dir>/plugins_registry`; every second the sockets found there (desired) are
//! reconciled with the plugins registered (actual), registering new ones through their
//! `pluginregistration` service and deregistering those whose socket is gone. Only CSI
//! drivers are handled (`csi`); other types are refused with a registration status.
//! Upstream twin: `pkg/kubelet/pluginmanager` (pluginwatcher, reconciler, cache).

pub mod csi;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the registry directory is read (upstream's reconciler period).
const RECONCILE_PERIOD: Duration = Duration::from_secs(1);

/// A registered plugin: what deregistration needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub name: String,
    pub plugin_type: String,
}

/// What the reconciler does in one pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Register(PathBuf),
    Deregister(PathBuf, Registered),
}

/// The pure decision: sockets without a registration are registered, registrations whose
/// socket is gone are withdrawn.
pub fn reconcile(
    sockets: &BTreeSet<PathBuf>,
    registered: &BTreeMap<PathBuf, Registered>,
) -> Vec<Action> {
    let mut out: Vec<Action> = registered
        .iter()
        .filter(|(path, _)| !sockets.contains(*path))
        .map(|(path, r)| Action::Deregister(path.clone(), r.clone()))
        .collect();
    out.extend(
        sockets
            .iter()
            .filter(|s| !registered.contains_key(*s))
            .map(|s| Action::Register(s.clone())),
    );
    out
}

/// The sockets in the registry directory (and its subdirectories), skipping hidden
/// entries as upstream's watcher does.
pub fn sockets_in(dir: &Path) -> BTreeSet<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_socket() => {
                    out.insert(e.path());
                }
                _ => {}
            }
        }
    }
    out
}

/// Runs the reconciler until the process ends.
pub async fn run(registry: PathBuf, handler: Arc<csi::Handler>) {
    if let Err(e) = std::fs::create_dir_all(&registry) {
        tracing::error!(dir = %registry.display(), error = %e, "cannot create the plugin registry");
        return;
    }
    handler.initialize().await;
    let mut registered: BTreeMap<PathBuf, Registered> = BTreeMap::new();
    // Sockets that failed to register, retried after a pause rather than every pass.
    let mut failed: BTreeMap<PathBuf, std::time::Instant> = BTreeMap::new();
    loop {
        let sockets = sockets_in(&registry);
        failed.retain(|s, _| sockets.contains(s));
        for action in reconcile(&sockets, &registered) {
            match action {
                Action::Register(socket) => {
                    if failed
                        .get(&socket)
                        .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
                    {
                        continue;
                    }
                    match handler.register(&socket).await {
                        Ok(r) => {
                            failed.remove(&socket);
                            registered.insert(socket, r);
                        }
                        Err(e) => {
                            tracing::warn!(socket = %socket.display(), error = e, "plugin registration failed");
                            failed.insert(socket, std::time::Instant::now());
                        }
                    }
                }
                Action::Deregister(socket, r) => {
                    handler.deregister(&r).await;
                    registered.remove(&socket);
                }
            }
        }
        tokio::time::sleep(RECONCILE_PERIOD).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sockets_register_and_gone_ones_deregister() {
        let p = |s: &str| PathBuf::from(s);
        let reg = |n: &str| Registered {
            name: n.into(),
            plugin_type: "CSIPlugin".into(),
        };
        let sockets: BTreeSet<PathBuf> = [p("/r/a-reg.sock"), p("/r/b-reg.sock")].into();
        let registered: BTreeMap<PathBuf, Registered> = [
            (p("/r/a-reg.sock"), reg("a")),
            (p("/r/gone-reg.sock"), reg("gone")),
        ]
        .into();
        assert_eq!(
            reconcile(&sockets, &registered),
            vec![
                Action::Deregister(p("/r/gone-reg.sock"), reg("gone")),
                Action::Register(p("/r/b-reg.sock")),
            ]
        );
        assert!(reconcile(&BTreeSet::new(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn only_sockets_count() {
        let dir = std::env::temp_dir().join(format!("plugins-registry-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("file.sock"), "").unwrap();
        let _a = std::os::unix::net::UnixListener::bind(dir.join("a-reg.sock")).unwrap();
        let _b = std::os::unix::net::UnixListener::bind(dir.join("sub/b-reg.sock")).unwrap();
        let _h = std::os::unix::net::UnixListener::bind(dir.join(".hidden.sock")).unwrap();
        let found = sockets_in(&dir);
        assert_eq!(
            found,
            [dir.join("a-reg.sock"), dir.join("sub/b-reg.sock")].into()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
