//! What tests of our CSI driver share: undoing what a failed run left mounted or
//! attached, and reading the calls the driver logged.

use std::path::PathBuf;
use std::process::Command;

/// On drop, unmounts everything under the directory (deepest first) and detaches the
/// loop devices of the driver's images under `<dir>/…/images`.
pub struct Cleanup {
    pub dir: PathBuf,
    /// The driver's image directories.
    pub images: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut points = csi::mount::mounts_under(&self.dir);
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &points {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        for images in &self.images {
            for e in std::fs::read_dir(images).into_iter().flatten().flatten() {
                let out = Command::new("losetup").arg("-j").arg(e.path()).output();
                for line in out
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
                    .lines()
                {
                    if let Some(dev) = line.split(':').next() {
                        let _ = Command::new("losetup").args(["-d", dev]).status();
                    }
                }
            }
        }
    }
}

/// (volume, method) of every `csi call` in a driver's JSON log, in order.
pub fn calls(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == "csi call")
        .map(|e| {
            (
                e["volume"].as_str().unwrap_or_default().to_string(),
                e["method"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The methods called for one volume, repeats folded.
pub fn calls_for(log: &str, volume: &str) -> Vec<String> {
    let mut out: Vec<String> = calls(log)
        .into_iter()
        .filter(|(v, _)| v == volume)
        .map(|(_, m)| m)
        .collect();
    out.dedup();
    out
}
