//! Process-wide capabilities the cluster operator grants (upstream `pkg/capabilities`),
//! consulted by pod validation wherever a pod spec appears (pods and pod templates).

use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_PRIVILEGED: AtomicBool = AtomicBool::new(false);

/// `--allow-privileged`: whether containers may run with `securityContext.privileged`.
pub fn set_allow_privileged(allow: bool) {
    ALLOW_PRIVILEGED.store(allow, Ordering::Relaxed);
}

pub fn allow_privileged() -> bool {
    ALLOW_PRIVILEGED.load(Ordering::Relaxed)
}
