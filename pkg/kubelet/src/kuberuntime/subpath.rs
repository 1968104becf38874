//! A volume mount's sub-path (upstream `makeMounts` and `ExpandContainerVolumeMounts`):
//! `subPathExpr` expanded from the container's environment, every variable it names
//! set; the result must stay inside the volume (relative, no `..`). A refused sub-path
//! keeps the container waiting with CreateContainerConfigError and upstream's message.
//! `prepare` then walks the sub-path inside the volume as upstream's `SafeMakeDir` and
//! `safeOpenSubPath` do: a symlink a container left in the volume may point within it
//! (as a configMap's `..data` links do) but never out of it.

use k8s_openapi::api::core::v1::VolumeMount;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The sub-path to mount ("" for the whole volume), or why it cannot be used.
pub fn resolve(vm: &VolumeMount, env: &BTreeMap<String, String>) -> Result<String, String> {
    let sub = match vm.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
        Some(expr) => {
            let missing: Vec<&str> = references(expr)
                .into_iter()
                .filter(|k| env.get(*k).is_none_or(|v| v.is_empty()))
                .collect();
            if !missing.is_empty() {
                let mut missing = missing;
                missing.sort();
                missing.dedup();
                return Err(format!("missing value for {}", missing.join(", ")));
            }
            super::env::expand(expr, env)
        }
        None => vm.sub_path.clone().unwrap_or_default(),
    };
    if sub.is_empty() {
        return Ok(sub);
    }
    if Path::new(&sub).is_absolute() {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if Path::new(&sub)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(sub)
}

/// Where a volume mounted at `base` on the host is mounted from for `vm`: the volume
/// itself, or its resolved and prepared sub-path.
pub fn host_path(
    vm: &VolumeMount,
    env: &BTreeMap<String, String>,
    base: &Path,
) -> Result<PathBuf, String> {
    match resolve(vm, env)? {
        sub if sub.is_empty() => Ok(base.to_path_buf()),
        sub => prepare(base, &sub),
    }
}

/// Creates what is missing of `sub` under the volume at `base` (with the volume root's
/// mode, as upstream) and returns the host path to mount, every symlink on the way
/// resolved and checked to stay inside the volume.
pub fn prepare(base: &Path, sub: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let root = std::fs::canonicalize(base).map_err(|e| format!("{}: {e}", base.display()))?;
    let mode = std::fs::metadata(&root)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755);
    let outside = |p: &Path| {
        format!(
            "subpath {:?} not within volume path {:?}",
            p.display().to_string(),
            root.display().to_string()
        )
    };
    let parts: Vec<Component<'_>> = Path::new(sub)
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let mut cur = root.clone();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(name) = part else {
            return Err(outside(&cur.join(part)));
        };
        let next = cur.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&next).map_err(|_| outside(&next))?;
                if !target.starts_with(&root) {
                    return Err(outside(&next));
                }
                if !target.is_dir() && i + 1 < parts.len() {
                    return Err(format!(
                        "{:?} is not a directory",
                        next.display().to_string()
                    ));
                }
                cur = target;
            }
            Ok(m) if m.is_dir() || i + 1 == parts.len() => cur = next,
            Ok(_) => {
                return Err(format!(
                    "{:?} is not a directory",
                    next.display().to_string()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&next)
                    .and_then(|()| {
                        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    })
                    .map_err(|e| format!("failed to create subPath directory {next:?}: {e}"))?;
                cur = next;
            }
            Err(e) => return Err(format!("{}: {e}", next.display())),
        }
    }
    Ok(cur)
}

/// The `$(VAR)` names an expression refers to (`$$` escapes a dollar).
fn references(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            rest = r;
        } else if let Some(r) = after.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            out.push(&r[..end]);
            rest = &r[end + 1..];
        } else {
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(sub: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount {
            name: "v".into(),
            mount_path: "/v".into(),
            sub_path: sub.map(String::from),
            sub_path_expr: expr.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn expansions_and_refusals() {
        let env = BTreeMap::from([
            ("POD".to_string(), "web-0".to_string()),
            ("UP".to_string(), "..".to_string()),
            ("ABS".to_string(), "/etc".to_string()),
        ]);
        assert_eq!(
            resolve(&vm(None, Some("logs/$(POD)")), &env).unwrap(),
            "logs/web-0"
        );
        assert_eq!(resolve(&vm(Some("a/b"), None), &env).unwrap(), "a/b");
        assert_eq!(resolve(&vm(None, None), &env).unwrap(), "");
        assert_eq!(
            resolve(&vm(None, Some("$(NOPE)/x")), &env).unwrap_err(),
            "missing value for NOPE"
        );
        assert_eq!(
            resolve(&vm(None, Some("$(UP)/x")), &env).unwrap_err(),
            "unable to provision SubPath `../x`: must not contain '..'"
        );
        assert_eq!(
            resolve(&vm(None, Some("$(ABS)")), &env).unwrap_err(),
            "error SubPath `/etc` must not be an absolute path"
        );
    }

    /// A symlink out of the volume (left there by another container) is refused; one
    /// within it is followed; missing directories take the volume root's mode.
    #[test]
    fn prepare_stays_inside_the_volume() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink("/etc", vol.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", vol.join("up")).unwrap();
        std::fs::create_dir(vol.join("..data")).unwrap();
        std::fs::write(vol.join("..data/key"), "v").unwrap();
        std::os::unix::fs::symlink("..data/key", vol.join("key")).unwrap();
        for bad in ["escape", "escape/passwd", "up", "up/etc"] {
            let e = prepare(&vol, bad).unwrap_err();
            assert!(e.contains("not within volume path"), "{bad}: {e}");
        }
        let root = std::fs::canonicalize(&vol).unwrap();
        assert_eq!(prepare(&vol, "key").unwrap(), root.join("..data/key"));
        let made = prepare(&vol, "a/b").unwrap();
        assert_eq!(made, root.join("a/b"));
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777);
        assert!(
            prepare(&vol, "key/x")
                .unwrap_err()
                .contains("not a directory")
        );
    }
}
