//! Storage end to end over CSI on real containerd (see `integration_tests::cluster`):
//! our driver on the node (`cmd/csi-hostpath`, registered with the kubelet through the
//! plugin registry, provisioning and resizing for its node), the default StorageClass
//! (WaitForFirstConsumer, XFS so it grows online on machines without CAP_SYS_RESOURCE),
//! and a StatefulSet of 3 with volumeClaimTemplates: volumes provisioned on the chosen
//! node, data kept across pod deletion and a kubelet restart (no stale mount), a claim
//! grown to 2Gi seen inside the running pod, attachments through VolumeAttachments and
//! node status (detached when the node is drained), CSIStorageCapacity published and
//! used by the scheduler, a raw block volume, usage in `/stats/summary` and
//! `kubelet_volume_stats_*`, `FailedMount` for a driver that is not there and
//! `FailedAttachVolume` for a volume it cannot attach, the driver's
//! calls in the CSI spec's order, and everything released, deleted and unmounted when
//! the set and its claims go.

use integration_tests::cluster::TestCluster;
use integration_tests::node::{BUSYBOX, command_in};
use integration_tests::wait_for;
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::Duration;

const DRIVER: &str = "hostpath.csi.k8s.io";
const GI: i64 = 1 << 30;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn statefulset() -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {{fsGroup: 2000}}
      containers:
      - name: c
        image: {BUSYBOX}
        command: [sh, -c, "[ -f /data/id ] || hostname > /data/id; echo boot >> /data/boots; exec sleep 3600"]
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

fn storage(q: &Value) -> i64 {
    let s = q.as_str().unwrap_or_default();
    if let Some(n) = s.strip_suffix("Gi") {
        n.parse::<i64>().unwrap_or(0) * GI
    } else if let Some(n) = s.strip_suffix("Mi") {
        n.parse::<i64>().unwrap_or(0) << 20
    } else {
        s.parse().unwrap_or(0)
    }
}

#[test]
fn a_statefulset_gets_provisioned_expandable_volumes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cl =
            TestCluster::start_with_kubelet_args(1, "iptables", &["--volume-stats-agg-period=1s"])
                .await;
        let s = &cl.apiserver;
        let c = s.client.clone();
        let root = cl.nodes[0].kubelet.dir.path().join("root");
        let state = cl.dir.path().join("csi-state");
        let _cleanup = integration_tests::csi::Cleanup {
            dir: root.clone(),
            images: vec![state.join("images")],
        };
        let admin = cl.kubeconfig_with_token("csi-admin", "test-admin-token");
        // The driver's node part, as its DaemonSet would run it.
        let socket_dir = root.join("plugins").join(DRIVER);
        std::fs::create_dir_all(&socket_dir).unwrap();
        let socket = socket_dir.join("csi.sock");
        let driver_log = cl.dir.path().join("csi-hostpath.log");
        let driver = Process(
            command_in(Some(&cl.nodes[0].ns.name), integration_tests::binary("csi-hostpath"))
                .arg(format!("--endpoint=unix://{}", socket.display()))
                .arg("--nodeid=node-0")
                .arg(format!("--statedir={}", state.display()))
                .arg(format!("--kubelet-registration-path={}", socket.display()))
                .arg(format!(
                    "--plugin-registration-path={}",
                    root.join("plugins_registry").display()
                ))
                .arg(format!("--kubeconfig={}", admin.display()))
                .args(["--enable-provisioner", "--enable-resizer", "--enable-attach", "--enable-attacher"])
                .args(["--enable-capacity", "--capacity-poll-interval=2s"])
                .env("NAMESPACE", "kube-system")
                .arg("--logging-format=json")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&driver_log).unwrap())
                .spawn()
                .unwrap(),
        );
        let log = || std::fs::read_to_string(&driver_log).unwrap_or_default();
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {{name: {DRIVER}}}
spec: {{attachRequired: true, podInfoOnMount: true, storageCapacity: true, fsGroupPolicy: File, volumeLifecycleModes: [Persistent, Ephemeral]}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: csi-hostpath
  annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: {DRIVER}
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
allowVolumeExpansion: true
parameters: {{csi.storage.k8s.io/fstype: xfs}}
"#
            )),
        );
        // Registered: the CSINode names the driver with its topology key.
        wait_for("the driver in CSINode", Duration::from_secs(60), || async {
            let n = c.get("/apis/storage.k8s.io/v1/csinodes/node-0").await.json();
            (n["spec"]["drivers"][0]["name"] == DRIVER).then_some(())
        })
        .await;

        // The driver publishes its free space for the class on this node.
        let capacity = wait_for("CSIStorageCapacity", Duration::from_secs(60), || async {
            let l = c.get("/apis/storage.k8s.io/v1/namespaces/kube-system/csistoragecapacities").await.json();
            l["items"].as_array()?.iter().find(|o| o["storageClassName"] == "csi-hostpath").cloned()
        })
        .await;
        assert_eq!(capacity["nodeTopology"]["matchLabels"]["topology.hostpath.csi/node"], "node-0");
        assert!(capacity["capacity"].as_str().is_some_and(|q| !q.is_empty() && q != "0"), "{capacity}");
        s.kubectl_ok(&["apply", "-f", "-"], Some(&statefulset()));
        let pods_ready = || async {
            let l = c.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").await.json();
            let items = l["items"].as_array().cloned().unwrap_or_default();
            (items.len() == 3
                && items.iter().all(|p| {
                    p["metadata"]["deletionTimestamp"].is_null()
                        && p["status"]["containerStatuses"][0]["ready"] == true
                }))
            .then_some(items)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let pods = loop {
            if let Some(p) = pods_ready().await {
                break p;
            }
            if std::time::Instant::now() > deadline {
                let (_, state, _) = s.kubectl(&["get", "pods,pvc,pv", "-o", "wide"], None);
                let (_, events, _) = s.kubectl(&["get", "events"], None);
                let kubelet = cl.nodes[0].kubelet.log();
                let tail: Vec<&str> = kubelet.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("csi")).collect();
                panic!(
                    "3 pods not ready:\n{state}\n{events}\ndriver:\n{}\nkubelet:\n{}",
                    log(),
                    tail[tail.len().saturating_sub(40)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        // Three claims bound to provisioned volumes on the chosen node.
        let pvs = c.get("/api/v1/persistentvolumes").await.json();
        let pvs = pvs["items"].as_array().unwrap();
        assert_eq!(pvs.len(), 3, "{pvs:?}\n{}", log());
        for pv in pvs {
            assert_eq!(pv["spec"]["csi"]["driver"], DRIVER);
            assert_eq!(pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"], DRIVER);
            assert_eq!(pv["status"]["phase"], "Bound");
            assert_eq!(
                pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0],
                "node-0"
            );
            assert_eq!(storage(&pv["spec"]["capacity"]["storage"]), GI);
        }
        for p in &pods {
            assert_eq!(p["spec"]["nodeName"], "node-0");
        }
        // Attached through VolumeAttachments, reported in the node's status.
        let vas = c.get("/apis/storage.k8s.io/v1/volumeattachments").await.json();
        let vas = vas["items"].as_array().unwrap();
        assert_eq!(vas.len(), 3, "{vas:?}");
        assert!(vas.iter().all(|va| va["status"]["attached"] == true && va["spec"]["nodeName"] == "node-0"));
        let node_volumes = || async {
            let n = c.get("/api/v1/nodes/node-0").await.json();
            let names = |f: &str| -> Vec<String> {
                n["status"][f].as_array().into_iter().flatten()
                    .map(|v| v.as_str().or(v["name"].as_str()).unwrap_or_default().to_string())
                    .collect()
            };
            (names("volumesAttached"), names("volumesInUse"))
        };
        wait_for("volumes attached and in use", Duration::from_secs(30), || async {
            let (attached, in_use) = node_volumes().await;
            (attached.len() == 3 && in_use.len() == 3).then_some(())
        })
        .await;
        // Each pod wrote its identity; fsGroup reached the volume (policy File).
        for i in 0..3 {
            let pod = format!("web-{i}");
            let id = s.kubectl_ok(&["exec", &pod, "--", "cat", "/data/id"], None);
            assert_eq!(id.trim(), pod);
            let group = s.kubectl_ok(&["exec", &pod, "--", "stat", "-c", "%g", "/data"], None);
            assert_eq!(group.trim(), "2000");
        }
        let df = |pod: &str, path: &str| {
            let out = s.kubectl_ok(&["exec", pod, "--", "df", "-k", path], None);
            out.lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let before = df("web-0", "/data");
        assert!(before > GI * 9 / 10 && before <= GI, "df of a 1Gi volume: {before}");

        // A deleted pod comes back with its data.
        let old_uid = pods.iter().find(|p| p["metadata"]["name"] == "web-1").unwrap()["metadata"]["uid"].clone();
        s.kubectl_ok(&["delete", "pod", "web-1"], None);
        wait_for("web-1 replaced", Duration::from_secs(120), || async {
            let p = c.get("/api/v1/namespaces/default/pods/web-1").await.json();
            (p["metadata"]["uid"] != old_uid && p["status"]["containerStatuses"][0]["ready"] == true).then_some(())
        })
        .await;
        assert_eq!(s.kubectl_ok(&["exec", "web-1", "--", "cat", "/data/id"], None).trim(), "web-1");
        let boots = s.kubectl_ok(&["exec", "web-1", "--", "cat", "/data/boots"], None);
        assert_eq!(boots.lines().count(), 2, "{boots}");

        // Grown to 2Gi: the new size inside the running pod, without recreating it.
        let web0 = c.get("/api/v1/namespaces/default/pods/web-0").await.json();
        s.kubectl_ok(
            &["patch", "pvc", "data-web-0", "-p", r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#],
            None,
        );
        let pvc = wait_for("data-web-0 grown", Duration::from_secs(120), || async {
            let p = c.get("/api/v1/namespaces/default/persistentvolumeclaims/data-web-0").await.json();
            (storage(&p["status"]["capacity"]["storage"]) == 2 * GI).then_some(p)
        })
        .await;
        assert!(
            pvc["status"]["conditions"].as_array().is_none_or(|c| c.is_empty()),
            "{pvc}"
        );
        let after = df("web-0", "/data");
        assert!(after > 2 * GI * 9 / 10, "df after growing: {after}");
        let now = c.get("/api/v1/namespaces/default/pods/web-0").await.json();
        assert_eq!(now["metadata"]["uid"], web0["metadata"]["uid"]);
        assert_eq!(now["status"]["containerStatuses"][0]["restartCount"], 0);

        // Usage in the Summary API and the volume metrics.
        let summary = wait_for("volume stats in the summary", Duration::from_secs(30), || async {
            let (ok, out, _) = s.kubectl(&["get", "--raw", "/api/v1/nodes/node-0/proxy/stats/summary"], None);
            let v: Value = serde_json::from_str(&out).ok()?;
            let vol = v["pods"]
                .as_array()?
                .iter()
                .flat_map(|p| p["volume"].as_array().cloned().unwrap_or_default())
                .find(|v| v["pvcRef"]["name"] == "data-web-0")?;
            (ok && vol["capacityBytes"].as_i64()? > 2 * GI * 9 / 10).then_some(vol)
        })
        .await;
        assert_eq!(summary["name"], "data");
        assert!(summary["usedBytes"].as_i64().is_some() && summary["inodes"].as_i64().is_some(), "{summary}");
        let metrics = s.kubectl_ok(&["get", "--raw", "/api/v1/nodes/node-0/proxy/metrics"], None);
        for family in ["capacity_bytes", "available_bytes", "used_bytes", "inodes", "inodes_free", "inodes_used"] {
            let line = format!(
                "kubelet_volume_stats_{family}{{namespace=\"default\",persistentvolumeclaim=\"data-web-1\"}}"
            );
            assert!(metrics.contains(&line), "{line} missing");
        }

        // A kubelet restart loses nothing and leaves no stale mount.
        let mounts_before = csi::mount::mounts_under(&root);
        assert_eq!(mounts_before.len(), 6, "3 staged and 3 published: {mounts_before:?}");
        cl.nodes[0].kubelet.terminate();
        cl.nodes[0].kubelet.restart_stopped().await;
        let s = &cl.apiserver;
        wait_for("pods ready after the restart", Duration::from_secs(60), pods_ready).await;
        let mut mounts_after = csi::mount::mounts_under(&root);
        let mut sorted = mounts_before.clone();
        sorted.sort();
        mounts_after.sort();
        assert_eq!(mounts_after, sorted);
        // The restarted kubelet serves exec once it knows its pods again.
        let id = wait_for("exec after the restart", Duration::from_secs(60), || async {
            let (ok, out, _) = s.kubectl(&["exec", "web-2", "--", "cat", "/data/id"], None);
            ok.then_some(out)
        })
        .await;
        assert_eq!(id.trim(), "web-2");
        s.kubectl_ok(&["exec", "web-2", "--", "sh", "-c", "echo after-restart >> /data/boots"], None);
        let boots = s.kubectl_ok(&["exec", "web-2", "--", "cat", "/data/boots"], None);
        let web2 = c.get("/api/v1/namespaces/default/pods/web-2").await.json();
        if boots.lines().count() != 2 {
            let uid = web2["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            let log = cl.nodes[0].kubelet.log();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(&uid) || l.contains("web-2")).collect();
            let _ = std::fs::write("/tmp/web2-debug.txt", lines.join("\n"));
            panic!("the kubelet restart restarted web-2: {boots}\n{}\n{}", web2["status"], lines.join("\n"));
        }

        // A drained node detaches its volumes; back in service, the pods find their data.
        s.kubectl_ok(&["drain", "node-0", "--ignore-daemonsets", "--timeout=120s"], None);
        wait_for("volumes detached", Duration::from_secs(120), || async {
            let vas = c.get("/apis/storage.k8s.io/v1/volumeattachments").await.json();
            let (attached, in_use) = node_volumes().await;
            (vas["items"].as_array()?.is_empty() && attached.is_empty() && in_use.is_empty()
                && csi::mount::mounts_under(&root).is_empty())
            .then_some(())
        })
        .await;
        s.kubectl_ok(&["uncordon", "node-0"], None);
        wait_for("pods back after the drain", Duration::from_secs(120), pods_ready).await;
        let boots = wait_for("exec after the drain", Duration::from_secs(60), || async {
            let (ok, out, _) = s.kubectl(&["exec", "web-2", "--", "cat", "/data/boots"], None);
            ok.then_some(out)
        })
        .await;
        assert!(boots.contains("after-restart") && boots.lines().count() == 3, "{boots}");

        // A raw block volume: the pod gets the device and writes and reads it.
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: raw}}
spec:
  volumeMode: Block
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 320Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: raw}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, "echo hello-block | dd of=/dev/xvda conv=notrunc 2>/dev/null; dd if=/dev/xvda bs=11 count=1 2>/dev/null; echo; exec sleep 3600"]
    volumeDevices: [{{name: d, devicePath: /dev/xvda}}]
  volumes: [{{name: d, persistentVolumeClaim: {{claimName: raw}}}}]
"#
            )),
        );
        let out = wait_for("the block device written and read", Duration::from_secs(90), || async {
            let (ok, out, _) = s.kubectl(&["logs", "raw"], None);
            (ok && out.contains("hello-block")).then_some(out)
        })
        .await;
        assert_eq!(out.trim(), "hello-block");
        s.kubectl_ok(&["delete", "pod", "raw", "--wait=true"], None);
        s.kubectl_ok(&["delete", "pvc", "raw", "--wait=false"], None);

        // An inline volume: made for the pod, sized by its attributes, gone with it.
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: v1
kind: Pod
metadata: {{name: inline}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, "echo scratch > /scratch/f; exec sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  volumes: [{{name: scratch, csi: {{driver: {DRIVER}, volumeAttributes: {{size: 64Mi}}}}}}]
"#
            )),
        );
        let f = wait_for("the inline volume written", Duration::from_secs(90), || async {
            let (ok, out, _) = s.kubectl(&["exec", "inline", "--", "cat", "/scratch/f"], None);
            ok.then_some(out)
        })
        .await;
        assert_eq!(f.trim(), "scratch");
        let total = df("inline", "/scratch");
        assert!(total > 40 << 20 && total <= 64 << 20, "df of a 64Mi inline volume: {total}");
        s.kubectl_ok(&["delete", "pod", "inline", "--wait=true"], None);
        assert!(log().contains("inline volume deleted"), "{}", log());

        // More than the node has: the scheduler says so, and nothing is provisioned.
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: huge}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 100Pi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: huge}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sleep, "3600"], volumeMounts: [{{name: d, mountPath: /d}}]}}
  volumes: [{{name: d, persistentVolumeClaim: {{claimName: huge}}}}]
"#
            )),
        );
        let why = wait_for("huge unschedulable", Duration::from_secs(60), || async {
            let p = c.get("/api/v1/namespaces/default/pods/huge").await.json();
            let cond = p["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "PodScheduled")?.clone();
            (cond["status"] == "False").then(|| cond["message"].as_str().unwrap_or_default().to_string())
        })
        .await;
        assert!(why.contains("node(s) did not have enough free storage"), "{why}");
        s.kubectl_ok(&["delete", "pod", "huge", "--wait=true"], None);
        s.kubectl_ok(&["delete", "pvc", "huge"], None);

        // A driver that is not there: FailedMount on the pod.
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: broken}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  claimRef: {{namespace: default, name: broken}}
  csi: {{driver: missing.csi.example.com, volumeHandle: nothing}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: broken}}
spec:
  storageClassName: ""
  volumeName: broken
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: broken}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sleep, "3600"], volumeMounts: [{{name: d, mountPath: /d}}]}}
  volumes: [{{name: d, persistentVolumeClaim: {{claimName: broken}}}}]
"#
            )),
        );
        let note = wait_for("FailedMount", Duration::from_secs(60), || async {
            let l = c.get("/apis/events.k8s.io/v1/namespaces/default/events").await.json();
            l["items"].as_array()?.iter().find_map(|e| {
                (e["regarding"]["name"] == "broken" && e["reason"] == "FailedMount")
                    .then(|| e["note"].as_str().unwrap_or_default().to_string())
            })
        })
        .await;
        assert!(
            note.contains("driver name missing.csi.example.com not found in the list of registered CSI drivers"),
            "{note}"
        );
        s.kubectl_ok(&["delete", "pod", "broken", "--wait=true"], None);
        s.kubectl_ok(&["delete", "pvc", "broken"], None);
        s.kubectl_ok(&["delete", "pv", "broken"], None);

        // A volume the driver cannot attach: FailedAttachVolume on the pod.
        s.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: unattachable}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  claimRef: {{namespace: default, name: unattachable}}
  csi: {{driver: {DRIVER}, volumeHandle: no-such-volume}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: unattachable}}
spec:
  storageClassName: ""
  volumeName: unattachable
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: unattachable}}
spec:
  nodeName: node-0
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sleep, "3600"], volumeMounts: [{{name: d, mountPath: /d}}]}}
  volumes: [{{name: d, persistentVolumeClaim: {{claimName: unattachable}}}}]
"#
            )),
        );
        let note = wait_for("FailedAttachVolume", Duration::from_secs(60), || async {
            let l = c.get("/apis/events.k8s.io/v1/namespaces/default/events").await.json();
            l["items"].as_array()?.iter().find_map(|e| {
                (e["regarding"]["name"] == "unattachable" && e["reason"] == "FailedAttachVolume")
                    .then(|| e["note"].as_str().unwrap_or_default().to_string())
            })
        })
        .await;
        assert!(
            note.starts_with("AttachVolume.Attach failed for volume \"unattachable\" : rpc error: code = NotFound"),
            "{note}"
        );
        s.kubectl_ok(&["delete", "pod", "unattachable", "--wait=true"], None);
        s.kubectl_ok(&["delete", "pvc", "unattachable"], None);
        s.kubectl_ok(&["delete", "pv", "unattachable", "--wait=false"], None);

        // Everything goes: pods, claims, volumes (reclaim Delete), mounts, images.
        let handles: Vec<String> = c.get("/api/v1/persistentvolumes").await.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pv| {
                pv["spec"]["csi"]["driver"] == DRIVER
                    && pv["spec"]["claimRef"]["name"].as_str().is_some_and(|n| n.starts_with("data-web-"))
            })
            .map(|pv| pv["spec"]["csi"]["volumeHandle"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(handles.len(), 3);
        s.kubectl_ok(&["delete", "statefulset", "web"], None);
        s.kubectl_ok(&["delete", "pvc", "data-web-0", "data-web-1", "data-web-2", "--wait=false"], None);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let l = c.get("/api/v1/persistentvolumes").await.json();
            if l["items"].as_array().is_some_and(|a| a.is_empty()) {
                break;
            }
            if std::time::Instant::now() > deadline {
                let (_, state, _) = s.kubectl(&["get", "pods,pvc,pv,volumeattachments", "-o", "yaml"], None);
                let (_, node, _) = s.kubectl(&["get", "node", "node-0", "-o", "jsonpath={.status.volumesInUse} {.status.volumesAttached}"], None);
                let msg = format!("volumes not deleted:\n{state}\nnode: {node}\ndriver:\n{}", log());
                let _ = std::fs::write("/tmp/csi-volumes-debug.txt", &msg);
                panic!("{msg}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        wait_for("nothing mounted", Duration::from_secs(60), || async {
            csi::mount::mounts_under(&root).is_empty().then_some(())
        })
        .await;
        let images: Vec<_> = std::fs::read_dir(state.join("images")).unwrap().flatten().collect();
        assert!(images.is_empty(), "{images:?}");

        // The driver saw each volume's calls in the CSI spec's order.
        let log = log();
        for (i, h) in handles.iter().enumerate() {
            let calls: Vec<String> = integration_tests::csi::calls_for(&log, h)
                .into_iter()
                .filter(|m| m != "NodeGetVolumeStats")
                .collect();
            let mut folded = calls.clone();
            folded.dedup();
            let first = |m: &str| folded.iter().position(|c| c == m).unwrap_or_else(|| panic!("{h}: no {m} in {folded:?}"));
            let last = |m: &str| folded.iter().rposition(|c| c == m).unwrap();
            assert_eq!(folded[0], "CreateVolume", "{folded:?}");
            assert!(first("NodeStageVolume") < first("NodePublishVolume"), "{folded:?}");
            assert!(last("NodePublishVolume") < last("NodeUnpublishVolume"), "{folded:?}");
            assert!(last("NodeUnpublishVolume") < last("NodeUnstageVolume"), "{folded:?}");
            assert_eq!(folded.last().map(String::as_str), Some("DeleteVolume"), "{i}: {folded:?}");
            assert!(first("ControllerPublishVolume") < first("NodeStageVolume"), "{folded:?}");
            assert!(last("NodeUnstageVolume") < last("ControllerUnpublishVolume"), "{folded:?}");
            if folded.iter().any(|m| m == "ControllerExpandVolume") {
                assert!(first("ControllerExpandVolume") < first("NodeExpandVolume"), "{folded:?}");
            }
        }
        assert!(
            integration_tests::csi::calls(&log).iter().any(|(_, m)| m == "ControllerExpandVolume"),
            "one volume was grown"
        );
        drop(driver);
    });
}
