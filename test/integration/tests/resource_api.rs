//! `resource.k8s.io/v1` (DRA objects) served with upstream's validation, defaults,
//! printer columns and field selectors; allocation itself is refused by the scheduler.

use integration_tests::apiserver::TestApiServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dra_objects_are_served() {
    let s = TestApiServer::start(None, &[]).await;
    let out = s.kubectl_ok(
        &["api-resources", "--api-group=resource.k8s.io", "-o", "name"],
        None,
    );
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "deviceclasses.resource.k8s.io",
            "resourceclaims.resource.k8s.io",
            "resourceclaimtemplates.resource.k8s.io",
            "resourceslices.resource.k8s.io"
        ]
    );
    let class = json!({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "gpu"},
        "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.example.com'"}}]}});
    s.kubectl_ok(&["create", "-f", "-"], Some(&class.to_string()));
    let bad = json!({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "bad"},
        "spec": {"selectors": [{"cel": {"expression": "device.driver =="}}]}});
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(&bad.to_string()));
    assert!(
        !ok && err.contains("spec.selectors[0].cel.expression: Invalid value"),
        "{err}"
    );

    let claim = json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "one-gpu"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu"}}]}}});
    let out = s.kubectl_ok(
        &["create", "-f", "-", "-o", "json"],
        Some(&claim.to_string()),
    );
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        created["spec"]["devices"]["requests"][0]["exactly"],
        json!({"deviceClassName": "gpu", "allocationMode": "ExactCount", "count": 1})
    );
    let out = s.kubectl_ok(&["get", "resourceclaims"], None);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["one-gpu", "pending"], "{out}");
    let (ok, _, err) = s.kubectl(
        &["patch", "resourceclaim", "one-gpu", "--type=merge", "-p",
          r#"{"spec":{"devices":{"requests":[{"name":"gpu","exactly":{"deviceClassName":"other"}}]}}}"#],
        None,
    );
    assert!(!ok && err.contains("field is immutable"), "{err}");
    let none = json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "neither"},
        "spec": {"devices": {"requests": [{"name": "gpu"}]}}});
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(&none.to_string()));
    assert!(
        !ok && err.contains("exactly one of `exactly` or `firstAvailable` is required"),
        "{err}"
    );

    for (name, node) in [("n1-gpus", "n1"), ("n2-gpus", "n2")] {
        let slice = json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name},
            "spec": {"driver": "gpu.example.com", "nodeName": node, "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0"}, {"name": "gpu-1"}]}});
        s.kubectl_ok(&["create", "-f", "-"], Some(&slice.to_string()));
    }
    let out = s.kubectl_ok(
        &["get", "resourceslices", "--field-selector=spec.nodeName=n2"],
        None,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "NODE", "DRIVER", "POOL", "AGE"]);
    assert!(lines[1].starts_with("n2-gpus"), "{out}");
    let homeless = json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "x"},
        "spec": {"driver": "gpu.example.com", "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1}}});
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(&homeless.to_string()));
    assert!(!ok && err.contains("exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"), "{err}");
}
