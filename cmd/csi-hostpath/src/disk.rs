//! The node's side effects: sparse images attached to loop devices, formatted (ext4 or
//! XFS) on first use, mounted at the staging path and bind-mounted into pods, grown in
//! place. The tools are util-linux's, e2fsprogs' and xfsprogs' (`losetup`, `blkid`,
//! `mount`, `mkfs.*`, `resize2fs`, `xfs_growfs`), as upstream's mount-utils
//! `SafeFormatAndMount` and `ResizeFs` run them.

use std::path::{Path, PathBuf};
use std::process::Command;
use tonic::Status;

pub fn image_path(statedir: &Path, id: &str) -> PathBuf {
    statedir.join("images").join(format!("{id}.img"))
}

/// Runs a tool; its trimmed stdout, or an Internal status with what it said.
fn run(program: &str, args: &[&str]) -> Result<String, Status> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Status::internal(format!("running {program}: {e}")))?;
    if !out.status.success() {
        return Err(Status::internal(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The image exists and is at least `capacity` bytes (sparse: no space is taken until
/// written). Never shrinks.
pub fn ensure_image(path: &Path, capacity: i64) -> Result<(), Status> {
    let io = |e: std::io::Error| Status::internal(format!("image {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let wanted = u64::try_from(capacity).unwrap_or(0);
    if len < wanted {
        f.set_len(wanted).map_err(io)?;
    }
    Ok(())
}

/// The loop devices the image is attached to (`losetup -j`).
fn attached(image: &Path) -> Result<Vec<String>, Status> {
    let listing = run("losetup", &["-j", &image.to_string_lossy()])?;
    Ok(listing
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|d| d.starts_with("/dev/"))
        .map(str::to_string)
        .collect())
}

/// The image's loop device, attaching it when it is not yet.
pub fn loop_device(image: &Path) -> Result<String, Status> {
    if let Some(dev) = attached_device(image)? {
        return Ok(dev);
    }
    run("losetup", &["--find", "--show", &image.to_string_lossy()])
}

pub fn is_attached(image: &Path) -> bool {
    attached(image).is_ok_and(|d| !d.is_empty())
}

/// The image's loop device if it is attached (never attaching it).
pub fn attached_device(image: &Path) -> Result<Option<String>, Status> {
    Ok(attached(image)?.into_iter().next())
}

/// Detaches every loop device of the image.
pub fn detach(image: &Path) -> Result<(), Status> {
    for dev in attached(image)? {
        run("losetup", &["-d", &dev])?;
    }
    Ok(())
}

/// The filesystem on a device, if any (blkid exits 2 when it finds none).
pub fn filesystem_of(dev: &str) -> Result<Option<String>, Status> {
    let probe = Command::new("blkid")
        .args(["-p", "-s", "TYPE", "-o", "value", dev])
        .output()
        .map_err(|e| Status::internal(format!("running blkid: {e}")))?;
    let found = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    Ok((probe.status.success() && !found.is_empty()).then_some(found))
}

/// Formats the device with `fs` unless it already holds a filesystem (never a second
/// mkfs, whatever it holds).
pub fn format_if_blank(dev: &str, fs: &str) -> Result<(), Status> {
    if filesystem_of(dev)?.is_some() {
        return Ok(());
    }
    match fs {
        "xfs" => run("mkfs.xfs", &["-q", dev]).map(|_| ()),
        _ => run("mkfs.ext4", &["-q", "-F", "-m0", dev]).map(|_| ()),
    }
}

/// Mounts the device's filesystem at `target` (created if need be), once.
pub fn mount_fs(dev: &str, fs: &str, target: &Path, flags: &[String]) -> Result<(), Status> {
    std::fs::create_dir_all(target)
        .map_err(|e| Status::internal(format!("creating {}: {e}", target.display())))?;
    if csi::mount::is_mounted(target) {
        return Ok(());
    }
    let mut args = vec!["-t".to_string(), fs.to_string()];
    if !flags.is_empty() {
        args.push("-o".into());
        args.push(flags.join(","));
    }
    args.push(dev.to_string());
    args.push(target.to_string_lossy().into_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run("mount", &refs).map(|_| ())
}

/// Bind-mounts `source` at `target` (a directory, or a file for a block device), read-only
/// when asked, once.
pub fn bind(source: &str, target: &Path, file: bool, readonly: bool) -> Result<(), Status> {
    let io = |e: std::io::Error| Status::internal(format!("creating {}: {e}", target.display()));
    if file {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if !target.exists() {
            std::fs::File::create(target).map_err(io)?;
        }
    } else {
        std::fs::create_dir_all(target).map_err(io)?;
    }
    if csi::mount::is_mounted(target) {
        return Ok(());
    }
    let t = target.to_string_lossy();
    run("mount", &["--bind", source, &t])?;
    if readonly {
        run("mount", &["-o", "remount,bind,ro", &t])?;
    }
    Ok(())
}

/// Unmounts `target` if something is mounted there, then removes it.
pub fn unmount_and_remove(target: &Path) -> Result<(), Status> {
    if csi::mount::is_mounted(target) {
        run("umount", &[&target.to_string_lossy()])?;
    }
    let removed = if target.is_dir() {
        std::fs::remove_dir(target)
    } else {
        std::fs::remove_file(target)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Status::internal(format!(
            "removing {}: {e}",
            target.display()
        ))),
        _ => Ok(()),
    }
}

/// Tells the loop device its image grew, then grows the filesystem mounted at
/// `mount_point` online: `resize2fs` for ext4 (the kernel wants CAP_SYS_RESOURCE),
/// `xfs_growfs` for XFS (CAP_SYS_ADMIN). A raw block volume stops at the device.
pub fn grow(dev: &str, mount_point: Option<&Path>) -> Result<(), Status> {
    run("losetup", &["-c", dev])?;
    let Some(mount_point) = mount_point else {
        return Ok(());
    };
    match filesystem_of(dev)?.as_deref() {
        Some("xfs") => run("xfs_growfs", &[&mount_point.to_string_lossy()]).map(|_| ()),
        Some("ext4" | "ext3" | "ext2") => run("resize2fs", &[dev]).map(|_| ()),
        Some(other) => Err(Status::failed_precondition(format!(
            "cannot grow a {other} filesystem"
        ))),
        None => Err(Status::failed_precondition(format!(
            "{dev} holds no filesystem"
        ))),
    }
}

/// A device's size in bytes.
pub fn device_size(dev: &str) -> Result<i64, Status> {
    run("blockdev", &["--getsize64", dev])?
        .parse()
        .map_err(|e| Status::internal(format!("size of {dev}: {e}")))
}

/// Bytes and inodes of the filesystem at `path`: (total, available, used) each.
pub struct Usage {
    pub bytes: (i64, i64, i64),
    pub inodes: (i64, i64, i64),
}

pub fn usage(path: &Path) -> Result<Usage, Status> {
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| Status::invalid_argument("path contains a NUL byte"))?;
    // SAFETY: statvfs is plain data; all zeroes is a valid value for it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid statvfs to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Status::internal(format!(
            "statfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    let frsize = st.f_frsize as i64;
    let total = st.f_blocks as i64 * frsize;
    let available = st.f_bavail as i64 * frsize;
    let used = (st.f_blocks - st.f_bfree) as i64 * frsize;
    let inodes = st.f_files as i64;
    let inodes_free = st.f_ffree as i64;
    Ok(Usage {
        bytes: (total, available, used),
        inodes: (inodes, inodes_free, inodes - inodes_free),
    })
}
