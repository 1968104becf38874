//! What the kubelet and CSI drivers both need to know about the node's mounts (a small
//! part of upstream's `k8s.io/mount-utils`): whether a path is a mount point, from
//! `/proc/self/mountinfo`, and unmounting one.

use std::path::Path;

/// Undoes /proc/self/mountinfo's octal escapes (`\040` for a space).
pub fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(n) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(n as char);
            i += 4;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Every mount point of this mount namespace.
pub fn mount_points() -> Vec<String> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// Whether something is mounted exactly at `path`.
pub fn is_mounted(path: &Path) -> bool {
    let wanted = path.to_string_lossy();
    mount_points().iter().any(|mp| *mp == wanted)
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy();
    mount_points()
        .into_iter()
        .filter(|mp| {
            mp.as_str() == prefix
                || mp
                    .strip_prefix(prefix.as_ref())
                    .is_some_and(|r| r.starts_with('/'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(super::unescape("/var/lib/a\\040b"), "/var/lib/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
    }
}
