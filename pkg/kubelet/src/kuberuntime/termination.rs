//! Termination messages (upstream `kuberuntime_container.go`: `makeMounts`,
//! `getTerminationMessage`, `readLastStringFromContainerLogs`): each container gets a
//! host file mounted at its `terminationMessagePath`; after it exits, what it wrote there
//! (its last 4096 bytes) is the status message, or with `FallbackToLogsOnError` and a
//! failed exit and an empty file, the tail of its log (80 lines, 2048 bytes at most).

use crate::cri::api;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Upstream `MaxContainerTerminationMessageLength`.
pub const MAX_MESSAGE_BYTES: u64 = 4096;
/// Upstream `MaxContainerTerminationMessageLogLength` / `...LogLines`.
const MAX_LOG_BYTES: u64 = 2048;
const MAX_LOG_LINES: usize = 80;

/// The annotation carrying the policy to the status side (upstream's label name).
pub const POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";

/// Creates the empty, world-writable file (non-root containers write it too) under
/// `<pod dir>/containers/<container>/` and returns its path.
pub fn create_file(pod_dir: &Path, container: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = pod_dir.join("containers").join(container);
    std::fs::create_dir_all(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or_default();
    let path = dir.join(format!("{nanos:08x}"));
    std::fs::File::create(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    Ok(path)
}

/// The last `max` bytes of a file.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The message of an exited container, from the file mounted at `path` (found among the
/// container's mounts) or, when `fallback_to_logs` and it failed with nothing written,
/// from the end of its CRI log.
pub fn message(status: &api::ContainerStatus, path: &str, fallback_to_logs: bool) -> String {
    let mut fallback = fallback_to_logs;
    let mut message = String::new();
    if let Some(m) = status.mounts.iter().find(|m| m.container_path == path) {
        match read_tail(Path::new(&m.host_path), MAX_MESSAGE_BYTES) {
            Ok(data) => {
                fallback &= data.is_empty();
                message = String::from_utf8_lossy(&data).into_owned();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return format!("Error on reading termination log {}: {e}", m.host_path);
            }
        }
    }
    if fallback && status.exit_code != 0 && !status.log_path.is_empty() {
        return last_log_lines(Path::new(&status.log_path));
    }
    message
}

/// The contents of the last lines of a CRI log file (`<time> <stream> <tag> <text>`).
fn last_log_lines(path: &Path) -> String {
    let Ok(raw) = read_tail(path, MAX_LOG_BYTES * 4) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(MAX_LOG_LINES);
    let mut out = String::new();
    for line in &lines[start..] {
        let mut parts = line.splitn(4, ' ');
        let (_time, _stream, tag, content) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        out.push_str(content.unwrap_or_default());
        // "F" ends a line; "P" is a part of one the runtime split.
        if tag != Some("P") {
            out.push('\n');
        }
    }
    let bytes = out.as_bytes();
    let cut = bytes.len().saturating_sub(MAX_LOG_BYTES as usize);
    String::from_utf8_lossy(&bytes[cut..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(host: &Path, log: &Path, exit_code: i32) -> api::ContainerStatus {
        api::ContainerStatus {
            exit_code,
            log_path: log.display().to_string(),
            mounts: vec![api::Mount {
                container_path: "/dev/termination-log".into(),
                host_path: host.display().to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn file_then_logs_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = create_file(dir.path(), "c").unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(
            &log,
            "2026-12-02T00:00:00Z stderr F first\n2026-12-02T00:00:01Z stderr P par\n2026-12-02T00:00:01Z stderr F tial\n",
        )
        .unwrap();
        // Nothing written: the log's end, only with the fallback and a failed exit.
        assert_eq!(
            message(&status(&file, &log, 1), "/dev/termination-log", true),
            "first\npartial\n"
        );
        assert_eq!(
            message(&status(&file, &log, 0), "/dev/termination-log", true),
            ""
        );
        assert_eq!(
            message(&status(&file, &log, 1), "/dev/termination-log", false),
            ""
        );
        // Written: the file wins, its last 4096 bytes.
        std::fs::write(&file, format!("{}DONE", "x".repeat(5000))).unwrap();
        let m = message(&status(&file, &log, 1), "/dev/termination-log", true);
        assert_eq!(m.len(), 4096);
        assert!(m.ends_with("DONE"));
    }
}
