//! Container log rotation (upstream `pkg/kubelet/logs/container_log_manager.go`): every
//! `containerLogMonitorInterval`, a running container's log that reached
//! `containerLogMaxSize` is renamed to `<log>.<YYYYMMDD-hhmmss>` and the runtime told
//! to reopen it (CRI `ReopenContainerLog`); rotated files beyond `containerLogMaxFiles`
//! (the live log counted) are deleted, oldest first, and every rotated file but the
//! newest is gzip-compressed to `<rotated>.gz`, as upstream's.

use crate::kubelet::Kubelet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The rotated files of `log` to delete so that, after one more rotation, `max_files`
/// files remain (the live log and `max_files - 1` rotated ones): upstream keeps
/// `max_files - 2` before rotating. Timestamps sort by name.
pub fn excess(mut rotated: Vec<PathBuf>, max_files: usize) -> Vec<PathBuf> {
    rotated.sort();
    let keep = max_files.saturating_sub(2);
    let n = rotated.len().saturating_sub(keep);
    rotated.truncate(n);
    rotated
}

/// The rotated files to compress: every uncompressed one but the newest, which the
/// runtime may still be finishing (upstream `compressUncompressedLogs`).
pub fn to_compress(mut rotated: Vec<PathBuf>) -> Vec<PathBuf> {
    rotated.sort();
    rotated.pop();
    rotated.retain(|p| p.extension().is_none_or(|e| e != "gz"));
    rotated
}

/// Writes `path` gzip-compressed to `<path>.gz` (through a temporary file, so a crash
/// leaves no half file under the final name) and removes it.
fn compress(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
    let data = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    enc.write_all(&data)
        .and_then(|_| enc.finish().map(|_| ()))
        .map_err(|e| format!("compressing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, &gz).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    std::fs::remove_file(path).map_err(|e| format!("removing {}: {e}", path.display()))
}

/// The rotated files of `log` (`<log>.<timestamp>`, compressed or not; upstream's
/// temporary files excluded).
fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_string());
            n.is_some_and(|n| n.starts_with(&prefix) && !n.ends_with(".tmp"))
        })
        .collect()
}

/// Upstream's `parseQuantity` for `containerLogMaxSize` ("10Mi").
pub fn max_bytes(size: &str) -> Result<u64, String> {
    let bytes = crate::nodestatus::quantity_bytes(size);
    match bytes > 0 {
        true => Ok(bytes as u64),
        false => Err(format!("invalid containerLogMaxSize {size:?}")),
    }
}

/// Rotates one container's log if it reached `max`; what happened, for the log.
async fn rotate(
    k: &Kubelet,
    id: &str,
    log: &Path,
    max: u64,
    max_files: usize,
) -> Result<bool, String> {
    let size = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    if size < max {
        return Ok(false);
    }
    for old in excess(rotated_files(log), max_files) {
        std::fs::remove_file(&old).map_err(|e| format!("removing {}: {e}", old.display()))?;
    }
    for old in to_compress(rotated_files(log)) {
        compress(&old)?;
    }
    let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
    let rotated = PathBuf::from(format!("{}.{stamp}", log.display()));
    std::fs::rename(log, &rotated).map_err(|e| format!("renaming {}: {e}", log.display()))?;
    if let Err(e) = k.runtime.reopen_container_log(id).await {
        // The runtime still writes the renamed file: put it back, as upstream does.
        let _ = std::fs::rename(&rotated, log);
        return Err(format!(
            "reopening the log of container {id}: {}",
            e.message()
        ));
    }
    Ok(true)
}

/// Watches every running container's log until the kubelet stops.
pub async fn run(k: Arc<Kubelet>, max: u64, max_files: usize, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Ok(containers) = k.runtime.list_containers().await else {
            continue;
        };
        for c in containers {
            if c.state != crate::cri::api::ContainerState::ContainerRunning as i32 {
                continue;
            }
            let Ok(status) = k.runtime.container_status(&c.id).await else {
                continue;
            };
            if status.log_path.is_empty() {
                continue;
            }
            match rotate(&k, &c.id, Path::new(&status.log_path), max, max_files).await {
                Ok(true) => tracing::debug!(container = c.id, "rotated the container log"),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    container = c.id,
                    error = e,
                    "Failed to rotate log for container"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_rotated_logs_go_oldest_first() {
        let f = |s: &str| PathBuf::from(format!("/l/0.log.{s}"));
        let rotated = vec![
            f("20240103-000000"),
            f("20240101-000000"),
            f("20240102-000000"),
        ];
        // Five files: the live log, three kept, one new rotation.
        assert_eq!(excess(rotated.clone(), 5), Vec::<PathBuf>::new());
        assert_eq!(excess(rotated.clone(), 4), [f("20240101-000000")]);
        assert_eq!(
            excess(rotated, 2),
            [
                f("20240101-000000"),
                f("20240102-000000"),
                f("20240103-000000")
            ]
        );
    }

    #[test]
    fn all_but_the_newest_rotated_log_are_compressed() {
        let f = |s: &str| PathBuf::from(format!("/l/0.log.{s}"));
        assert_eq!(
            to_compress(vec![
                f("20240103-000000"),
                f("20240101-000000.gz"),
                f("20240102-000000")
            ]),
            [f("20240102-000000")]
        );
        assert!(to_compress(vec![f("20240101-000000")]).is_empty());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log.20240101-000000");
        std::fs::write(&p, "line\n").unwrap();
        compress(&p).unwrap();
        assert!(!p.exists());
        let gz = std::fs::read(dir.path().join("0.log.20240101-000000.gz")).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .unwrap();
        assert_eq!(out, "line\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(max_bytes("10Mi").unwrap(), 10 * 1024 * 1024);
        assert_eq!(max_bytes("1Ki").unwrap(), 1024);
        assert!(max_bytes("0").is_err());
    }

    #[test]
    fn rotated_files_are_found_by_name() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("0.log");
        for n in [
            "0.log",
            "0.log.20240101-000000",
            "0.log.20240102-000000.tmp",
            "1.log",
        ] {
            std::fs::write(d.path().join(n), "x").unwrap();
        }
        assert_eq!(
            rotated_files(&log),
            [d.path().join("0.log.20240101-000000")]
        );
    }
}
