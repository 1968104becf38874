//! The kubelet's certificate file store (client-go `util/certificate` `FileStore`, as
//! `pkg/kubelet/certificate` uses it): each issued pair is written to
//! `<dir>/<prefix>-<YYYY-MM-DD-HH-MM-SS>.pem` (certificate then key) and
//! `<prefix>-current.pem` is switched to it with an atomic symlink rename.

use std::path::{Path, PathBuf};

pub struct FileStore {
    dir: PathBuf,
    prefix: String,
}

impl FileStore {
    pub fn new(dir: &Path, prefix: &str) -> Self {
        FileStore {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
        }
    }

    /// `<prefix>-current.pem`, the path kubeconfigs name.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}-current.pem", self.prefix))
    }

    /// The current certificate and key PEM, when there is one.
    pub fn current(&self) -> Option<String> {
        std::fs::read_to_string(self.current_path()).ok()
    }

    /// Writes a new pair and makes it current; returns the current path.
    pub fn update(&self, cert_pem: &str, key_pem: &str) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let stamp = jiff::Zoned::now().strftime("%Y-%m-%d-%H-%M-%S").to_string();
        let file = self.dir.join(format!("{}-{stamp}.pem", self.prefix));
        let mut body = cert_pem.trim_end().to_string();
        body.push('\n');
        body.push_str(key_pem.trim_end());
        body.push('\n');
        write_private(&file, &body)?;
        let link = self.current_path();
        let tmp = self
            .dir
            .join(format!("{}-current.pem.updating", self.prefix));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&file, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &link))
            .map_err(|e| format!("linking {}: {e}", link.display()))?;
        Ok(link)
    }
}

/// Writes a file readable by its owner only (keys, and pairs that hold one).
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_switch_the_current_link() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), "kubelet-client");
        assert!(store.current().is_none());
        let path = store.update("CERT1\n", "KEY1\n").unwrap();
        assert_eq!(path, dir.path().join("kubelet-client-current.pem"));
        assert_eq!(store.current().unwrap(), "CERT1\nKEY1\n");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        store.update("CERT2", "KEY2").unwrap();
        assert_eq!(store.current().unwrap(), "CERT2\nKEY2\n");
        let target = std::fs::read_link(&path).unwrap();
        assert!(
            target
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("kubelet-client-20")
        );
    }
}
