//! Which sysctls a pod may set (upstream `pkg/kubelet/sysctl`): the safe set, plus the
//! `allowedUnsafeSysctls` (names or `prefix*` patterns, each of which must be
//! namespaced), refused when the namespace they live in is the host's. A pod asking for
//! anything else is rejected with reason `SysctlForbidden` and never runs.

use k8s_openapi::api::core::v1::Pod;

/// Upstream's safe sysctls for v1.35 (namespaced, isolated from the node).
pub const SAFE: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

pub const FORBIDDEN_REASON: &str = "SysctlForbidden";

#[derive(PartialEq, Debug)]
enum Namespace {
    Ipc,
    Net,
}

/// `net/ipv4/x` is `net.ipv4.x`; with `/` as the separator a `.` is part of a name
/// (`net/ipv4/conf/eno2.100/rp_filter` is `net.ipv4.conf.eno2/100.rp_filter`).
fn normalize(name: &str) -> String {
    let slash_first = match (name.find('.'), name.find('/')) {
        (None, _) => true,
        (Some(d), Some(s)) => s < d,
        (Some(_), None) => false,
    };
    match slash_first {
        true => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        false => name.to_string(),
    }
}

/// The kernel namespace a sysctl (or a `prefix*` pattern) lives in.
fn namespace_of(name: &str) -> Option<Namespace> {
    let name = name.trim_end_matches('*');
    if name.starts_with("net.") {
        return Some(Namespace::Net);
    }
    let ipc = ["kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."];
    ipc.iter()
        .any(|p| name.starts_with(p))
        .then_some(Namespace::Ipc)
}

/// The allowlist: safe sysctls and the node's unsafe patterns.
pub struct Allowlist {
    patterns: Vec<String>,
}

impl Allowlist {
    /// Checks `allowedUnsafeSysctls` at start: every pattern must be namespaced.
    pub fn new(unsafe_allowed: &[String]) -> Result<Self, String> {
        let mut patterns: Vec<String> = SAFE.iter().map(|s| s.to_string()).collect();
        for p in unsafe_allowed {
            let p = normalize(p);
            if namespace_of(&p).is_none() {
                return Err(format!(
                    "the sysctl {p:?} is not known to be namespaced (allowedUnsafeSysctls)"
                ));
            }
            if p.contains('*') && !p.ends_with('*') {
                return Err(format!(
                    "the sysctl pattern {p:?} may only end with '*' (allowedUnsafeSysctls)"
                ));
            }
            patterns.push(p);
        }
        Ok(Allowlist { patterns })
    }

    fn allowed(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }

    /// Err(message) for the first sysctl the pod may not set here.
    pub fn admit(&self, pod: &Pod) -> Result<(), String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let sysctls = spec
            .security_context
            .and_then(|s| s.sysctls)
            .unwrap_or_default();
        for s in sysctls {
            let name = normalize(&s.name);
            if !self.allowed(&name) {
                return Err(format!("forbidden sysctl: {:?} not allowlisted", s.name));
            }
            match namespace_of(&name) {
                Some(Namespace::Net) if spec.host_network == Some(true) => {
                    return Err(format!(
                        "forbidden sysctl: {:?} not allowed with host net enabled",
                        s.name
                    ));
                }
                Some(Namespace::Ipc) if spec.host_ipc == Some(true) => {
                    return Err(format!(
                        "forbidden sysctl: {:?} not allowed with host ipc enabled",
                        s.name
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(sysctls: &[&str], host_network: bool) -> Pod {
        let list: Vec<_> = sysctls
            .iter()
            .map(|n| serde_json::json!({"name": n, "value": "1"}))
            .collect();
        serde_json::from_value(serde_json::json!({"spec": {"hostNetwork": host_network,
            "securityContext": {"sysctls": list}, "containers": [{"name": "c"}]}}))
        .unwrap()
    }

    #[test]
    fn safe_and_allowed_unsafe_sysctls() {
        let a = Allowlist::new(&["net.core.somaxconn".into(), "kernel.msg*".into()]).unwrap();
        assert!(
            a.admit(&pod(
                &["net.ipv4.tcp_syncookies", "net/ipv4/ip_local_port_range"],
                false
            ))
            .is_ok()
        );
        assert!(
            a.admit(&pod(&["net.core.somaxconn", "kernel.msgmax"], false))
                .is_ok()
        );
        assert_eq!(
            a.admit(&pod(&["net.core.rmem_max"], false)).unwrap_err(),
            "forbidden sysctl: \"net.core.rmem_max\" not allowlisted"
        );
        assert_eq!(
            a.admit(&pod(&["net.ipv4.tcp_syncookies"], true))
                .unwrap_err(),
            "forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled"
        );
        assert!(a.admit(&pod(&[], true)).is_ok());
        assert_eq!(
            normalize("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
    }

    #[test]
    fn unsafe_patterns_must_be_namespaced() {
        assert!(Allowlist::new(&["vm.swappiness".into()]).is_err());
        assert!(Allowlist::new(&["net.*".into()]).is_ok());
        assert!(Allowlist::new(&["net.*.x".into()]).is_err());
    }
}
