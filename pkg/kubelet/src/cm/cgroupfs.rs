//! Creating, configuring and removing the kubelet's own cgroups through the cgroup
//! filesystem (upstream `pkg/kubelet/cm/cgroup_manager_linux.go` with libcontainer's fs
//! and fs2 managers), on cgroup v1 (one directory per controller) and v2 (unified).
//! Names are absolute cgroup paths (`/kubepods/burstable/pod<uid>`), already converted
//! for the cgroup driver.

use super::resources::{CPU_PERIOD_US, ResourceConfig, shares_to_weight};
use std::io;
use std::path::{Path, PathBuf};

/// The v1 controllers the kubelet configures; the runtime creates the others it needs
/// below our cgroups.
const V1_CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

#[derive(Clone, Debug)]
pub struct CgroupFs {
    root: PathBuf,
    unified: bool,
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", dir.join(file).display()),
        )
    })
}

impl CgroupFs {
    /// The host's cgroup filesystem at `/sys/fs/cgroup`.
    pub fn host() -> Self {
        Self::at(PathBuf::from("/sys/fs/cgroup"))
    }

    pub fn at(root: PathBuf) -> Self {
        let unified = root.join("cgroup.controllers").exists();
        CgroupFs { root, unified }
    }

    pub fn unified(&self) -> bool {
        self.unified
    }

    fn rel(name: &str) -> &str {
        name.trim_start_matches('/')
    }

    /// Every directory that holds `name` (one per v1 hierarchy, or the one v2 path).
    fn dirs(&self, name: &str, all_hierarchies: bool) -> Vec<PathBuf> {
        if self.unified {
            return vec![self.root.join(Self::rel(name))];
        }
        let hierarchies: Vec<String> = if all_hierarchies {
            std::fs::read_dir(&self.root)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().is_dir() && !e.path().is_symlink())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| n != "unified")
                        .collect()
                })
                .unwrap_or_default()
        } else {
            V1_CONTROLLERS.iter().map(|s| s.to_string()).collect()
        };
        hierarchies
            .into_iter()
            .map(|h| self.root.join(h).join(Self::rel(name)))
            .collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        let probe = if self.unified {
            self.root.join(Self::rel(name))
        } else {
            self.root.join("memory").join(Self::rel(name))
        };
        probe.is_dir()
    }

    /// cgroup v2 hands controllers down level by level: each ancestor of `name` must
    /// enable cpu, memory and pids for its children.
    fn enable_controllers(&self, name: &str) -> io::Result<()> {
        let mut dir = self.root.clone();
        let parts: Vec<&str> = Self::rel(name)
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        for part in parts {
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            for c in ["cpu", "memory", "pids"] {
                if !enabled.split_whitespace().any(|e| e == c) {
                    write(&dir, "cgroup.subtree_control", &format!("+{c}"))?;
                }
            }
            dir = dir.join(part);
            std::fs::create_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Creates `name` (and its parents) if missing and applies `cfg` to it.
    pub fn ensure(&self, name: &str, cfg: &ResourceConfig) -> io::Result<()> {
        if self.unified {
            self.enable_controllers(name)?;
        } else {
            for d in self.dirs(name, false) {
                std::fs::create_dir_all(&d).map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", d.display()))
                })?;
            }
        }
        self.update(name, cfg)
    }

    /// Applies `cfg`: None means unlimited for the quota, memory and pids.
    pub fn update(&self, name: &str, cfg: &ResourceConfig) -> io::Result<()> {
        let rel = Self::rel(name);
        if self.unified {
            let d = self.root.join(rel);
            if let Some(s) = cfg.cpu_shares {
                write(&d, "cpu.weight", &shares_to_weight(s).to_string())?;
            }
            let quota = cfg.cpu_quota.map_or("max".to_string(), |q| q.to_string());
            write(&d, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
            write(
                &d,
                "memory.max",
                &cfg.memory_limit.map_or("max".into(), |m| m.to_string()),
            )?;
            write(
                &d,
                "pids.max",
                &cfg.pids_limit.map_or("max".into(), |p| p.to_string()),
            )?;
            return Ok(());
        }
        let cpu = self.root.join("cpu").join(rel);
        if let Some(s) = cfg.cpu_shares {
            write(&cpu, "cpu.shares", &s.to_string())?;
        }
        write(&cpu, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
        write(
            &cpu,
            "cpu.cfs_quota_us",
            &cfg.cpu_quota.unwrap_or(-1).to_string(),
        )?;
        let mem = self.root.join("memory").join(rel);
        write(
            &mem,
            "memory.limit_in_bytes",
            &cfg.memory_limit.unwrap_or(-1).to_string(),
        )?;
        let pids = self.root.join("pids").join(rel);
        write(
            &pids,
            "pids.max",
            &cfg.pids_limit.map_or("max".into(), |p| p.to_string()),
        )?;
        Ok(())
    }

    /// The child cgroups of `name` (from the memory controller on v1) with how long ago
    /// each was made.
    pub fn children(&self, name: &str) -> Vec<(String, std::time::Duration)> {
        let dir = if self.unified {
            self.root.join(Self::rel(name))
        } else {
            self.root.join("memory").join(Self::rel(name))
        };
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let age = e
                    .metadata()
                    .ok()?
                    .modified()
                    .ok()?
                    .elapsed()
                    .unwrap_or_default();
                Some((e.file_name().into_string().ok()?, age))
            })
            .collect()
    }

    /// The processes in `name` and below (from the pids controller on v1).
    pub fn pids(&self, name: &str) -> Vec<i32> {
        let top = if self.unified {
            self.root.join(Self::rel(name))
        } else {
            self.root.join("pids").join(Self::rel(name))
        };
        let mut out = Vec::new();
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        out
    }

    /// Kills what is left in `name` and removes it, children first, from every
    /// hierarchy (upstream's pod cgroup `Destroy`).
    pub fn destroy(&self, name: &str) -> io::Result<()> {
        for attempt in 0..5 {
            let left = self.pids(name);
            for pid in &left {
                // SAFETY: kill(2) with a pid read from the cgroup; no memory involved.
                unsafe { kill(*pid, 9) };
            }
            let mut failed = None;
            for d in self.dirs(name, true) {
                if let Err(e) = remove_tree(&d) {
                    failed = Some(e);
                }
            }
            match failed {
                None => return Ok(()),
                Some(e) if attempt == 4 => return Err(e),
                Some(_) => std::thread::sleep(std::time::Duration::from_millis(20 << attempt)),
            }
        }
        Ok(())
    }
}

/// rmdir of a cgroup directory and its child cgroups, deepest first.
fn remove_tree(d: &Path) -> io::Result<()> {
    if !d.is_dir() {
        return Ok(());
    }
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove_tree(&e.path())?;
            }
        }
    }
    match std::fs::remove_dir(d) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("removing {}: {e}", d.display()),
        )),
        _ => Ok(()),
    }
}
