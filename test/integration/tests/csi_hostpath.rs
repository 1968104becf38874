//! Our CSI driver through real CSI gRPC on its unix socket, in the order the kubelet and
//! the sidecars call: create, stage (loop device + ext4), publish (bind mount), stats,
//! expand online, unpublish, unstage, delete; and a raw block volume. Needs root and
//! loop devices, as the driver does on a node.

use csi::v1 as api;
use csi::v1::controller_client::ControllerClient;
use csi::v1::identity_client::IdentityClient;
use csi::v1::node_client::NodeClient;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> (Driver, String) {
    start_with(dir, &[])
}

fn start_with(dir: &Path, extra: &[String]) -> (Driver, String) {
    let socket = dir.join("csi.sock");
    let log = dir.join("driver.log");
    let child = Command::new(integration_tests::binary("csi-hostpath"))
        .arg(format!("--endpoint=unix://{}", socket.display()))
        .args([
            "--nodeid=node-a",
            "--enable-attach",
            "--logging-format=json",
        ])
        .arg(format!("--statedir={}", dir.join("state").display()))
        .args(extra)
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the driver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        Driver { child, log },
        format!("unix://{}", socket.display()),
    )
}

/// A mounted volume's capability; XFS unless `fs` says otherwise (ext4 grows online only
/// with CAP_SYS_RESOURCE, which a containerised CI may lack; XFS needs CAP_SYS_ADMIN).
fn fs_cap(mode: api::volume_capability::access_mode::Mode, fs: &str) -> api::VolumeCapability {
    use api::volume_capability::{AccessMode, AccessType, MountVolume};
    api::VolumeCapability {
        access_mode: Some(AccessMode { mode: mode as i32 }),
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: fs.into(),
            ..Default::default()
        })),
    }
}

fn mount_cap(mode: api::volume_capability::access_mode::Mode) -> api::VolumeCapability {
    fs_cap(mode, "xfs")
}

fn filesystem_at(path: &Path) -> String {
    let out = Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "--target"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn block_cap() -> api::VolumeCapability {
    use api::volume_capability::{AccessMode, AccessType, BlockVolume, access_mode::Mode};
    api::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Block(BlockVolume {})),
    }
}

fn topology(node: &str) -> api::TopologyRequirement {
    let t = api::Topology {
        segments: [("topology.hostpath.csi/node".to_string(), node.to_string())].into(),
    };
    api::TopologyRequirement {
        requisite: vec![t.clone()],
        preferred: vec![t],
    }
}

fn mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

fn size_of(path: &Path) -> i64 {
    let out = Command::new("df")
        .args(["--output=size", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_lives_through_the_csi_calls_in_order() {
    use api::volume_capability::access_mode::Mode;
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = integration_tests::csi::Cleanup {
        dir: dir.path().to_path_buf(),
        images: vec![dir.path().join("state/images")],
    };
    let (driver, endpoint) = start(dir.path());
    let channel = component_base::grpc::unix_channel(&endpoint, Duration::from_secs(30)).unwrap();
    let mut identity = IdentityClient::new(channel.clone());
    let mut controller = ControllerClient::new(channel.clone());
    let mut node = NodeClient::new(channel);

    let info = identity
        .get_plugin_info(api::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "hostpath.csi.k8s.io");
    assert_eq!(
        identity
            .probe(api::ProbeRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready,
        Some(true)
    );
    let node_info = node
        .node_get_info(api::NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(node_info.node_id, "node-a");

    // Create: the name is the ID, the topology this node, repeats are idempotent.
    let create =
        |name: &str, size: i64, node: &str, cap: api::VolumeCapability| api::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(api::CapacityRange {
                required_bytes: size,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![cap],
            accessibility_requirements: Some(topology(node)),
            ..Default::default()
        };
    let vol = controller
        .create_volume(create(
            "pvc-data",
            320 << 20,
            "node-a",
            mount_cap(Mode::SingleNodeWriter),
        ))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(vol.volume_id, "pvc-data");
    assert_eq!(vol.capacity_bytes, 320 << 20);
    assert_eq!(
        vol.accessible_topology[0].segments["topology.hostpath.csi/node"],
        "node-a"
    );
    let again = controller
        .create_volume(create(
            "pvc-data",
            320 << 20,
            "node-a",
            mount_cap(Mode::SingleNodeWriter),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.volume.unwrap().volume_id, "pvc-data");
    let conflict = controller
        .create_volume(create(
            "pvc-data",
            1 << 30,
            "node-a",
            mount_cap(Mode::SingleNodeWriter),
        ))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), tonic::Code::AlreadyExists);
    let elsewhere = controller
        .create_volume(create(
            "pvc-other",
            64 << 20,
            "node-b",
            mount_cap(Mode::SingleNodeWriter),
        ))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::ResourceExhausted);
    let shared = controller
        .create_volume(create(
            "pvc-rwx",
            64 << 20,
            "node-a",
            mount_cap(Mode::MultiNodeMultiWriter),
        ))
        .await
        .unwrap_err();
    assert_eq!(shared.code(), tonic::Code::InvalidArgument);
    controller
        .controller_publish_volume(api::ControllerPublishVolumeRequest {
            volume_id: "pvc-data".into(),
            node_id: "node-a".into(),
            volume_capability: Some(mount_cap(Mode::SingleNodeWriter)),
            ..Default::default()
        })
        .await
        .unwrap();

    // Stage and publish: ext4 on a loop device, bind-mounted into the "pod".
    let staging = dir.path().join("staging/pvc-data");
    let target = dir.path().join("pods/p1/volumes/data");
    let stage = api::NodeStageVolumeRequest {
        volume_id: "pvc-data".into(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(mount_cap(Mode::SingleNodeWriter)),
        ..Default::default()
    };
    node.node_stage_volume(stage.clone()).await.unwrap();
    node.node_stage_volume(stage.clone()).await.unwrap();
    let publish = api::NodePublishVolumeRequest {
        volume_id: "pvc-data".into(),
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(mount_cap(Mode::SingleNodeWriter)),
        ..Default::default()
    };
    node.node_publish_volume(publish.clone()).await.unwrap();
    assert!(mounted(&staging) && mounted(&target));
    assert_eq!(filesystem_at(&target), "xfs");
    std::fs::write(target.join("data.txt"), "kept\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(staging.join("data.txt")).unwrap(),
        "kept\n"
    );
    let before = size_of(&target);
    assert!(before > 250 << 20 && before <= 320 << 20, "{before}");

    let stats = node
        .node_get_volume_stats(api::NodeGetVolumeStatsRequest {
            volume_id: "pvc-data".into(),
            volume_path: target.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage[0].total, before);
    assert!(stats.usage[1].total > 0, "inodes reported");
    assert!(!stats.volume_condition.unwrap().abnormal);

    // Expand online: the controller grows the image, the node the device and ext4.
    let expanded = controller
        .controller_expand_volume(api::ControllerExpandVolumeRequest {
            volume_id: "pvc-data".into(),
            capacity_range: Some(api::CapacityRange {
                required_bytes: 448 << 20,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expanded.capacity_bytes, 448 << 20);
    assert!(expanded.node_expansion_required);
    let grown = node
        .node_expand_volume(api::NodeExpandVolumeRequest {
            volume_id: "pvc-data".into(),
            volume_path: target.display().to_string(),
            staging_target_path: staging.display().to_string(),
            capacity_range: Some(api::CapacityRange {
                required_bytes: 448 << 20,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grown.capacity_bytes, 448 << 20);
    let after = size_of(&target);
    assert!(after > before + (100 << 20), "{before} -> {after}");
    assert_eq!(
        std::fs::read_to_string(target.join("data.txt")).unwrap(),
        "kept\n"
    );

    // A staged volume is not deleted.
    let busy = controller
        .delete_volume(api::DeleteVolumeRequest {
            volume_id: "pvc-data".into(),
            secrets: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(busy.code(), tonic::Code::FailedPrecondition);

    // Unpublish and unstage (twice each: the kubelet repeats them), then stage again:
    // no second mkfs, the data is there.
    let unpublish = api::NodeUnpublishVolumeRequest {
        volume_id: "pvc-data".into(),
        target_path: target.display().to_string(),
    };
    node.node_unpublish_volume(unpublish.clone()).await.unwrap();
    node.node_unpublish_volume(unpublish).await.unwrap();
    let unstage = api::NodeUnstageVolumeRequest {
        volume_id: "pvc-data".into(),
        staging_target_path: staging.display().to_string(),
    };
    node.node_unstage_volume(unstage.clone()).await.unwrap();
    node.node_unstage_volume(unstage.clone()).await.unwrap();
    assert!(!mounted(&target) && !target.exists() && !mounted(&staging));
    node.node_stage_volume(stage).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(staging.join("data.txt")).unwrap(),
        "kept\n"
    );
    node.node_unstage_volume(unstage).await.unwrap();

    // Delete, twice.
    for _ in 0..2 {
        controller
            .delete_volume(api::DeleteVolumeRequest {
                volume_id: "pvc-data".into(),
                secrets: Default::default(),
            })
            .await
            .unwrap();
    }
    let listed = controller
        .list_volumes(api::ListVolumesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.entries.is_empty());

    // ext4, the default filesystem: formatted and mounted the same way.
    controller
        .create_volume(create(
            "pvc-ext4",
            64 << 20,
            "node-a",
            fs_cap(Mode::SingleNodeWriter, ""),
        ))
        .await
        .unwrap();
    let ext4_staging = dir.path().join("staging/pvc-ext4");
    node.node_stage_volume(api::NodeStageVolumeRequest {
        volume_id: "pvc-ext4".into(),
        staging_target_path: ext4_staging.display().to_string(),
        volume_capability: Some(fs_cap(Mode::SingleNodeWriter, "")),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(filesystem_at(&ext4_staging), "ext4");
    let ext4_size = size_of(&ext4_staging);
    assert!(ext4_size > 40 << 20 && ext4_size <= 64 << 20, "{ext4_size}");
    node.node_unstage_volume(api::NodeUnstageVolumeRequest {
        volume_id: "pvc-ext4".into(),
        staging_target_path: ext4_staging.display().to_string(),
    })
    .await
    .unwrap();
    controller
        .delete_volume(api::DeleteVolumeRequest {
            volume_id: "pvc-ext4".into(),
            secrets: Default::default(),
        })
        .await
        .unwrap();

    // A raw block volume: the device itself appears at the target path.
    controller
        .create_volume(create("pvc-raw", 32 << 20, "node-a", block_cap()))
        .await
        .unwrap();
    let raw_target = dir.path().join("pods/p2/volumeDevices/raw");
    node.node_stage_volume(api::NodeStageVolumeRequest {
        volume_id: "pvc-raw".into(),
        staging_target_path: dir.path().join("staging/pvc-raw").display().to_string(),
        volume_capability: Some(block_cap()),
        ..Default::default()
    })
    .await
    .unwrap();
    node.node_publish_volume(api::NodePublishVolumeRequest {
        volume_id: "pvc-raw".into(),
        target_path: raw_target.display().to_string(),
        volume_capability: Some(block_cap()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(mounted(&raw_target));
    let stats = node
        .node_get_volume_stats(api::NodeGetVolumeStatsRequest {
            volume_id: "pvc-raw".into(),
            volume_path: raw_target.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage[0].total, 32 << 20);
    node.node_unpublish_volume(api::NodeUnpublishVolumeRequest {
        volume_id: "pvc-raw".into(),
        target_path: raw_target.display().to_string(),
    })
    .await
    .unwrap();
    node.node_unstage_volume(api::NodeUnstageVolumeRequest {
        volume_id: "pvc-raw".into(),
        staging_target_path: dir.path().join("staging/pvc-raw").display().to_string(),
    })
    .await
    .unwrap();
    controller
        .delete_volume(api::DeleteVolumeRequest {
            volume_id: "pvc-raw".into(),
            secrets: Default::default(),
        })
        .await
        .unwrap();
    assert!(!dir.path().join("state/images/pvc-raw.img").exists());

    // The driver's log has every call, in the order made.
    let log = std::fs::read_to_string(&driver.log).unwrap();
    let dedup = integration_tests::csi::calls_for(&log, "pvc-data");
    assert_eq!(
        dedup,
        [
            "CreateVolume",
            "ControllerPublishVolume",
            "NodeStageVolume",
            "NodePublishVolume",
            "NodeGetVolumeStats",
            "ControllerExpandVolume",
            "NodeExpandVolume",
            "DeleteVolume",
            "NodeUnpublishVolume",
            "NodeUnstageVolume",
            "NodeStageVolume",
            "NodeUnstageVolume",
            "DeleteVolume",
        ],
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_registers_with_the_kubelet_plugin_watcher() {
    use csi::pluginregistration as reg;
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("plugins_registry");
    let kubelet_view = "/var/lib/kubelet/plugins/hostpath.csi.k8s.io/csi.sock";
    let (mut driver, _) = start_with(
        dir.path(),
        &[
            format!("--kubelet-registration-path={kubelet_view}"),
            format!("--plugin-registration-path={}", registry.display()),
        ],
    );
    let socket = registry.join("hostpath.csi.k8s.io-reg.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no registration socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    // What the kubelet's plugin watcher does with a new socket.
    let channel = component_base::grpc::unix_channel(
        &format!("unix://{}", socket.display()),
        Duration::from_secs(30),
    )
    .unwrap();
    let mut client = reg::registration_client::RegistrationClient::new(channel);
    let info = client
        .get_info(reg::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, "CSIPlugin");
    assert_eq!(info.name, "hostpath.csi.k8s.io");
    assert_eq!(info.endpoint, kubelet_view);
    assert_eq!(info.supported_versions, ["1.0.0"]);
    client
        .notify_registration_status(reg::RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();
    assert!(driver.child.try_wait().unwrap().is_none(), "still serving");
    // A refused registration ends the process so its container restarts.
    client
        .notify_registration_status(reg::RegistrationStatus {
            plugin_registered: false,
            error: "version 0.9 is not supported".into(),
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = driver.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the driver kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(&driver.log).unwrap();
    assert!(
        log.contains("Registration process failed with error: version 0.9 is not supported"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_publishes_a_registered_driver_in_csinode() {
    use integration_tests::apiserver::TestApiServer;
    use integration_tests::node::{TestContainerd, TestKubelet};
    use integration_tests::wait_for;
    let s = TestApiServer::start(None, &[]).await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let k = TestKubelet::start(
        &s.kubeconfig(),
        &ctd,
        "node-a",
        &["--fake-container-runtime"],
    )
    .await;
    let registry = k.dir.path().join("root/plugins_registry");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("csi.sock");
    let (mut driver, _) = start_with(
        dir.path(),
        &[
            format!("--kubelet-registration-path={}", socket.display()),
            format!("--plugin-registration-path={}", registry.display()),
            "--maxvolumespernode=7".to_string(),
        ],
    );
    // CSINode: the driver with its node ID, topology keys and volume limit, owned by
    // the Node; the Node: the node ID annotation and the topology label.
    let csinode = wait_for("the driver in CSINode", Duration::from_secs(30), || async {
        let r = c.get("/apis/storage.k8s.io/v1/csinodes/node-a").await;
        let v = r.json();
        (r.status == 200
            && v["spec"]["drivers"]
                .as_array()
                .is_some_and(|d| !d.is_empty()))
        .then_some(v)
    })
    .await;
    let d = &csinode["spec"]["drivers"][0];
    assert_eq!(d["name"], "hostpath.csi.k8s.io", "{csinode}");
    assert_eq!(d["nodeID"], "node-a");
    assert_eq!(
        d["topologyKeys"],
        serde_json::json!(["topology.hostpath.csi/node"])
    );
    assert_eq!(d["allocatable"]["count"], 7);
    assert_eq!(csinode["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(
        csinode["metadata"]["annotations"]["storage.alpha.kubernetes.io/migrated-plugins"],
        "kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/azure-file,kubernetes.io/cinder,kubernetes.io/gce-pd,kubernetes.io/portworx-volume,kubernetes.io/vsphere-volume"
    );
    let node = c.get("/api/v1/nodes/node-a").await.json();
    assert_eq!(
        node["metadata"]["annotations"]["csi.volume.kubernetes.io/nodeid"],
        r#"{"hostpath.csi.k8s.io":"node-a"}"#
    );
    assert_eq!(
        node["metadata"]["labels"]["topology.hostpath.csi/node"],
        "node-a"
    );
    let log = std::fs::read_to_string(&driver.log).unwrap();
    assert!(log.contains("the kubelet registered the driver"), "{log}");
    // The driver goes (its sockets with it): the kubelet takes it out again.
    Command::new("kill")
        .args(["-TERM", &driver.child.id().to_string()])
        .status()
        .unwrap();
    let _ = driver.child.wait();
    // Deregistration updates the CSINode, then the Node: wait for both.
    let node = wait_for(
        "the driver gone from CSINode and the node",
        Duration::from_secs(30),
        || async {
            let v = c
                .get("/apis/storage.k8s.io/v1/csinodes/node-a")
                .await
                .json();
            let node = c.get("/api/v1/nodes/node-a").await.json();
            let gone = v["spec"]["drivers"].as_array().is_none_or(|d| d.is_empty())
                && node["metadata"]["annotations"]
                    .get("csi.volume.kubernetes.io/nodeid")
                    .is_none();
            gone.then_some(node)
        },
    )
    .await;
    assert!(
        node["metadata"]["annotations"]
            .get("csi.volume.kubernetes.io/nodeid")
            .is_none(),
        "{node}"
    );
    drop(k);
}
