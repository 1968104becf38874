//! What the driver knows about its volumes: one JSON record per volume under
//! `<statedir>/volumes/`, and the pure decisions about them (names, capacities,
//! topology, access modes) that the services apply. Upstream twin: csi-driver-host-path's
//! `pkg/state`.

use csi::v1 as api;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tonic::Status;

/// The capacity a request without a range gets, as upstream's hostpath driver.
pub const DEFAULT_CAPACITY: i64 = 1 << 30;
/// Images are sized in whole MiB (ext4 needs room for its own metadata too).
const ALIGN: i64 = 1 << 20;
/// The smallest filesystem mkfs.ext4 makes comfortably.
const MIN_CAPACITY: i64 = 16 << 20;
/// mkfs.xfs (xfsprogs ≥ 5.19) refuses filesystems under 300 MiB.
const MIN_XFS_CAPACITY: i64 = 300 << 20;
/// The topology key every volume and node carries.
pub const TOPOLOGY_KEY: &str = "topology.hostpath.csi/node";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub capacity: i64,
    pub node: String,
    /// Whether it was created for raw block access.
    #[serde(default)]
    pub block: bool,
    /// An inline volume of one pod: made on publish, gone on unpublish.
    #[serde(default)]
    pub ephemeral: bool,
}

/// The volume context key the kubelet sets on an inline volume's publish.
pub const EPHEMERAL_KEY: &str = "csi.storage.k8s.io/ephemeral";
/// The inline volume attribute naming its size (a quantity: `64Mi`).
pub const SIZE_ATTRIBUTE: &str = "size";
/// An inline volume's size when its attributes name none.
pub const DEFAULT_EPHEMERAL_CAPACITY: i64 = 100 << 20;

/// The size of an inline volume from its attributes, in whole MiB and at least the
/// filesystem's minimum.
pub fn ephemeral_capacity(size: Option<&str>, fs: &str) -> Result<i64, Status> {
    let bytes = match size {
        None => DEFAULT_EPHEMERAL_CAPACITY,
        Some(s) => apimachinery::resource::Quantity::parse(s)
            .map(|q| q.value())
            .filter(|b| *b > 0)
            .ok_or_else(|| Status::invalid_argument(format!("invalid size {s:?}")))?,
    };
    Ok(((bytes + ALIGN - 1) / ALIGN * ALIGN).max(min_capacity(fs)))
}

/// The filesystems a mounted volume may carry.
pub const FILESYSTEMS: &[&str] = &["ext4", "xfs"];

/// The filesystem the capabilities ask for: ext4 unless one names another we make.
pub fn fs_type(caps: &[api::VolumeCapability]) -> &'static str {
    caps.iter()
        .find_map(|c| match &c.access_type {
            Some(api::volume_capability::AccessType::Mount(m)) => {
                FILESYSTEMS.iter().copied().find(|f| *f == m.fs_type)
            }
            _ => None,
        })
        .unwrap_or("ext4")
}

/// The smallest volume of that filesystem (or of a raw block volume: ext4's).
pub fn min_capacity(fs: &str) -> i64 {
    if fs == "xfs" {
        MIN_XFS_CAPACITY
    } else {
        MIN_CAPACITY
    }
}

/// The volume records of one driver instance.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(statedir: &Path) -> std::io::Result<Store> {
        let dir = statedir.join("volumes");
        std::fs::create_dir_all(&dir)?;
        Ok(Store { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn get(&self, id: &str) -> Option<Volume> {
        let bytes = std::fs::read(self.path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Written to a temporary file and renamed: a crash leaves the old record or the new.
    pub fn put(&self, v: &Volume) -> Result<(), Status> {
        let tmp = self.dir.join(format!(".{}.tmp", v.id));
        let bytes = serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, self.path(&v.id)))
            .map_err(|e| Status::internal(format!("recording volume {}: {e}", v.id)))
    }

    pub fn delete(&self, id: &str) -> Result<(), Status> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Status::internal(format!("forgetting volume {id}: {e}")))
            }
            _ => Ok(()),
        }
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by(|a: &Volume, b| a.id.cmp(&b.id));
        out
    }
}

/// A volume's ID from its name: the name itself (the external provisioner names volumes
/// `pvc-<uid>`), so a retried CreateVolume finds the volume it made.
pub fn volume_id(name: &str) -> Result<String, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("volume name missing in request"));
    }
    let ok = name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok || name.starts_with('.') {
        return Err(Status::invalid_argument(format!(
            "volume name {name:?} must be at most 128 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(name.to_string())
}

/// The size for a capacity range: at least `required_bytes` (else the default), in whole
/// MiB, never above `limit_bytes`.
pub fn capacity_for(range: Option<&api::CapacityRange>, min: i64) -> Result<i64, Status> {
    let (required, limit) = range.map_or((0, 0), |r| (r.required_bytes, r.limit_bytes));
    if required < 0 || limit < 0 {
        return Err(Status::invalid_argument(
            "capacity range must not be negative",
        ));
    }
    if limit > 0 && required > limit {
        return Err(Status::invalid_argument(format!(
            "required bytes {required} exceed the limit {limit}"
        )));
    }
    let wanted = if required == 0 {
        if limit > 0 {
            limit.min(DEFAULT_CAPACITY)
        } else {
            DEFAULT_CAPACITY
        }
    } else {
        required
    };
    let size = (wanted.max(min) + ALIGN - 1) / ALIGN * ALIGN;
    if limit > 0 && size > limit {
        return Err(Status::out_of_range(format!(
            "a volume of at least {} bytes cannot honour the limit of {limit} bytes",
            size
        )));
    }
    Ok(size)
}

/// Whether an existing volume satisfies a repeated CreateVolume's range.
pub fn fits(capacity: i64, range: Option<&api::CapacityRange>) -> bool {
    let Some(r) = range else { return true };
    capacity >= r.required_bytes && (r.limit_bytes == 0 || capacity <= r.limit_bytes)
}

/// This node as a topology segment.
pub fn topology(node: &str) -> api::Topology {
    api::Topology {
        segments: [(TOPOLOGY_KEY.to_string(), node.to_string())].into(),
    }
}

/// Whether the requested topology admits this node: no requisite list, or one naming it.
pub fn topology_allows(req: Option<&api::TopologyRequirement>, node: &str) -> bool {
    let Some(req) = req else { return true };
    if req.requisite.is_empty() {
        return req.preferred.is_empty()
            || req
                .preferred
                .iter()
                .any(|t| t.segments.get(TOPOLOGY_KEY).is_none_or(|n| n == node));
    }
    req.requisite
        .iter()
        .any(|t| t.segments.get(TOPOLOGY_KEY).is_none_or(|n| n == node))
}

/// Which capabilities a node-local volume serves: one node at a time, mounted or block.
/// None when all are supported, else why not.
pub fn unsupported(caps: &[api::VolumeCapability]) -> Option<String> {
    use api::volume_capability::access_mode::Mode;
    if caps.is_empty() {
        return Some("volume capabilities missing in request".into());
    }
    for c in caps {
        let mode = c
            .access_mode
            .as_ref()
            .and_then(|m| Mode::try_from(m.mode).ok())
            .unwrap_or(Mode::Unknown);
        if !matches!(
            mode,
            Mode::SingleNodeWriter
                | Mode::SingleNodeReaderOnly
                | Mode::SingleNodeSingleWriter
                | Mode::SingleNodeMultiWriter
        ) {
            return Some(format!(
                "access mode {} is not supported: volumes live on one node",
                mode.as_str_name()
            ));
        }
        if c.access_type.is_none() {
            return Some("access type (mount or block) missing".into());
        }
        if let Some(api::volume_capability::AccessType::Mount(m)) = &c.access_type
            && !m.fs_type.is_empty()
            && !FILESYSTEMS.contains(&m.fs_type.as_str())
        {
            return Some(format!(
                "filesystem {} is not supported: only {}",
                m.fs_type,
                FILESYSTEMS.join(" and ")
            ));
        }
    }
    None
}

/// Whether the capabilities ask for raw block access.
pub fn is_block(caps: &[api::VolumeCapability]) -> bool {
    caps.iter().any(|c| {
        matches!(
            c.access_type,
            Some(api::volume_capability::AccessType::Block(_))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(required: i64, limit: i64) -> api::CapacityRange {
        api::CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        }
    }

    #[test]
    fn capacities_round_up_to_whole_mebibytes_within_the_limit() {
        assert_eq!(capacity_for(None, MIN_CAPACITY).unwrap(), DEFAULT_CAPACITY);
        assert_eq!(
            capacity_for(Some(&range(1 << 30, 0)), MIN_CAPACITY).unwrap(),
            1 << 30
        );
        assert_eq!(
            capacity_for(Some(&range((100 << 20) + 1, 0)), MIN_CAPACITY).unwrap(),
            101 << 20
        );
        // Below the smallest filesystem: raised to it.
        assert_eq!(
            capacity_for(Some(&range(1, 0)), MIN_CAPACITY).unwrap(),
            MIN_CAPACITY
        );
        assert_eq!(
            capacity_for(Some(&range(1, 0)), min_capacity("xfs")).unwrap(),
            300 << 20
        );
        assert_eq!(
            capacity_for(Some(&range(0, 64 << 20)), MIN_CAPACITY).unwrap(),
            64 << 20
        );
        assert_eq!(
            capacity_for(Some(&range(2 << 30, 1 << 30)), MIN_CAPACITY)
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            capacity_for(Some(&range((100 << 20) + 1, (100 << 20) + 2)), MIN_CAPACITY)
                .unwrap_err()
                .code(),
            tonic::Code::OutOfRange
        );
        assert!(fits(1 << 30, Some(&range(1 << 29, 0))));
        assert!(!fits(1 << 30, Some(&range(2 << 30, 0))));
    }

    #[test]
    fn names_become_ids_or_are_refused() {
        assert_eq!(volume_id("pvc-1234-ab").unwrap(), "pvc-1234-ab");
        assert!(volume_id("").is_err());
        assert!(volume_id("../etc").is_err());
        assert!(volume_id(".hidden").is_err());
    }

    #[test]
    fn topology_names_this_node() {
        let want = |n: &str| api::TopologyRequirement {
            requisite: vec![topology(n)],
            preferred: vec![topology(n)],
        };
        assert!(topology_allows(None, "n1"));
        assert!(topology_allows(Some(&want("n1")), "n1"));
        assert!(!topology_allows(Some(&want("n2")), "n1"));
    }

    #[test]
    fn multi_node_access_is_refused() {
        use api::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
        let cap = |mode: Mode, fs: &str| api::VolumeCapability {
            access_mode: Some(AccessMode { mode: mode as i32 }),
            access_type: Some(AccessType::Mount(MountVolume {
                fs_type: fs.into(),
                ..Default::default()
            })),
        };
        assert!(unsupported(&[cap(Mode::SingleNodeWriter, "")]).is_none());
        assert!(unsupported(&[cap(Mode::MultiNodeMultiWriter, "")]).is_some());
        assert!(unsupported(&[cap(Mode::SingleNodeWriter, "xfs")]).is_none());
        assert!(unsupported(&[cap(Mode::SingleNodeWriter, "btrfs")]).is_some());
        assert_eq!(fs_type(&[cap(Mode::SingleNodeWriter, "")]), "ext4");
        assert_eq!(fs_type(&[cap(Mode::SingleNodeWriter, "xfs")]), "xfs");
        assert!(unsupported(&[]).is_some());
    }

    #[test]
    fn inline_volumes_are_sized_from_their_attributes() {
        assert_eq!(
            ephemeral_capacity(None, "ext4").unwrap(),
            DEFAULT_EPHEMERAL_CAPACITY
        );
        assert_eq!(ephemeral_capacity(Some("64Mi"), "ext4").unwrap(), 64 << 20);
        assert_eq!(ephemeral_capacity(Some("1"), "ext4").unwrap(), MIN_CAPACITY);
        assert_eq!(
            ephemeral_capacity(Some("64Mi"), "xfs").unwrap(),
            MIN_XFS_CAPACITY
        );
        assert!(ephemeral_capacity(Some("lots"), "ext4").is_err());
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("csi-state-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let v = Volume {
            id: "pvc-a".into(),
            name: "pvc-a".into(),
            capacity: 1 << 30,
            node: "n1".into(),
            block: false,
            ephemeral: false,
        };
        store.put(&v).unwrap();
        assert_eq!(Store::open(&dir).unwrap().get("pvc-a"), Some(v.clone()));
        assert_eq!(store.list(), vec![v]);
        store.delete("pvc-a").unwrap();
        store.delete("pvc-a").unwrap();
        assert!(store.get("pvc-a").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
