//! A pod's `fsGroup` on its volumes (upstream `pkg/volume/volume_linux.go`
//! `SetVolumeOwnership`): every file and directory of the volume is given the group and
//! group read (and write, unless the volume is read-only) permission, directories also
//! setgid and group search so what containers create later keeps the group.
//! `fsGroupChangePolicy: OnRootMismatch` skips the walk when the volume's root already
//! has the group and permissions.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The permission bits `fsGroup` adds to an entry.
pub fn mask(is_dir: bool, readonly: bool) -> u32 {
    let m = if readonly { RO_MASK } else { RW_MASK };
    if is_dir { m | SETGID | EXEC_MASK } else { m }
}

/// Whether the volume's root already carries the group and permissions.
fn root_matches(dir: &Path, gid: u32, readonly: bool) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| {
        let want = mask(true, readonly);
        m.gid() == gid && m.mode() & want == want
    })
}

fn change(path: &Path, gid: u32, readonly: bool) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::os::unix::fs::lchown(path, None, Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.mode() | mask(meta.is_dir(), readonly);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn walk(path: &Path, gid: u32, readonly: bool) -> Result<(), String> {
    change(path, gid, readonly)?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        for e in std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            walk(&e.path(), gid, readonly)?;
        }
    }
    Ok(())
}

/// Applies `fs_group` to the volume at `dir` under `policy` (`Always` by default).
pub fn set(dir: &Path, fs_group: i64, readonly: bool, policy: Option<&str>) -> Result<(), String> {
    let gid = u32::try_from(fs_group).map_err(|_| format!("invalid fsGroup {fs_group}"))?;
    if policy == Some("OnRootMismatch") && root_matches(dir, gid, readonly) {
        return Ok(());
    }
    walk(dir, gid, readonly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_upstream() {
        assert_eq!(mask(false, false), 0o660);
        assert_eq!(mask(false, true), 0o440);
        assert_eq!(mask(true, false), 0o2770);
        assert_eq!(mask(true, true), 0o2550);
    }

    #[test]
    fn a_volume_gets_the_group_and_its_permissions() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), "x").unwrap();
        std::fs::set_permissions(
            d.path().join("sub/f"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/f", d.path().join("link")).unwrap();
        // Our own group: no privilege needed to set it.
        let gid = std::fs::metadata(d.path()).unwrap().gid();
        set(d.path(), i64::from(gid), false, None).unwrap();
        let f = std::fs::metadata(d.path().join("sub/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o660);
        let sub = std::fs::metadata(d.path().join("sub")).unwrap();
        assert_eq!(sub.mode() & 0o2770, 0o2770);
        assert!(root_matches(d.path(), gid, false));
        assert!(set(d.path(), -1, false, None).is_err());
    }
}
