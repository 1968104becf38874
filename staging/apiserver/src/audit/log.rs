//! The audit log backend (`--audit-log-path`): one JSON event per line, rotated when it
//! passes `--audit-log-maxsize` megabytes into `<name>-<timestamp><ext>`, keeping at most
//! `--audit-log-maxbackup` old files no older than `--audit-log-maxage` days. `-` writes
//! to standard output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Clone, Debug, Default)]
pub struct Rotation {
    /// Megabytes before rotating; 0 = never.
    pub max_size_mb: u64,
    /// Old files kept; 0 = all.
    pub max_backups: usize,
    /// Days old files are kept; 0 = forever.
    pub max_age_days: u64,
}

pub struct LogBackend {
    path: PathBuf,
    rotation: Rotation,
    file: Mutex<Option<(File, u64)>>,
}

impl LogBackend {
    pub fn new(path: PathBuf, rotation: Rotation) -> Result<LogBackend, String> {
        let b = LogBackend {
            path,
            rotation,
            file: Mutex::new(None),
        };
        if !b.is_stdout() {
            let f = b.open()?;
            *b.file.lock().unwrap() = Some(f);
        }
        Ok(b)
    }

    fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }

    fn open(&self) -> Result<(File, u64), String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("opening audit log {}: {e}", self.path.display()))?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((f, size))
    }

    /// Appends one line; rotation and write failures are logged, never fatal.
    pub fn write(&self, line: &[u8]) {
        if self.is_stdout() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line).and_then(|_| out.write_all(b"\n"));
            return;
        }
        let mut guard = self.file.lock().unwrap();
        let limit = self.rotation.max_size_mb * 1024 * 1024;
        if let Some((_, size)) = guard.as_ref()
            && limit > 0
            && *size > 0
            && size + line.len() as u64 + 1 > limit
        {
            *guard = None;
            self.rotate();
        }
        if guard.is_none() {
            match self.open() {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::error!(error = %e, "audit log unavailable");
                    return;
                }
            }
        }
        if let Some((f, size)) = guard.as_mut() {
            if let Err(e) = f.write_all(line).and_then(|_| f.write_all(b"\n")) {
                tracing::error!(error = %e, "writing audit log");
            }
            *size += line.len() as u64 + 1;
        }
    }

    fn rotate(&self) {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = self
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let stamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H-%M-%S%.3f")
            .to_string();
        let backup = self.path.with_file_name(format!("{stem}-{stamp}{ext}"));
        if let Err(e) = std::fs::rename(&self.path, &backup) {
            tracing::error!(error = %e, "rotating audit log");
            return;
        }
        // Prune backups beyond the count or age limits, oldest first.
        let dir = self
            .path
            .parent()
            .map(PathBuf::from)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let prefix = format!("{stem}-");
        let mut backups: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) && n.ends_with(&ext)
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        backups.sort();
        let max_age = Duration::from_secs(self.rotation.max_age_days * 86_400);
        let excess = if self.rotation.max_backups > 0 {
            backups.len().saturating_sub(self.rotation.max_backups)
        } else {
            0
        };
        for (i, (modified, path)) in backups.iter().enumerate() {
            let too_old =
                self.rotation.max_age_days > 0 && modified.elapsed().is_ok_and(|age| age > max_age);
            if i < excess || too_old {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
