//! The golden kubectl comparison (`hack/kubectl-golden.py` over
//! `testdata/kubectl-golden.txt`): the same session with the machine's upstream kubectl
//! and with ours, in lockstep against one apiserver. Every command must match byte for
//! byte (after masking UIDs, resourceVersions, times and the session marker) except the
//! known differences below, each with its reason.

use integration_tests::apiserver::TestApiServer;
use std::process::Command;

/// Commands whose output differs from the machine's kubectl (v1.32) on purpose.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // Since v1.34 delete names the namespace ("deleted from <ns> namespace"); we are v1.35.
    ("delete cm cm1", "v1.34+ delete message"),
    ("delete cm -l app=demo", "v1.34+ delete message"),
    ("delete -f applied.yaml", "v1.34+ delete message"),
    ("delete cm --all", "v1.34+ delete message"),
    ("delete svc gen-svc", "v1.34+ delete message"),
    ("delete quota gen-q", "v1.34+ delete message"),
    (
        "delete -f describe-objects.yaml --wait=false",
        "v1.34+ delete message",
    ),
    ("delete -f ing.yaml", "v1.34+ delete message"),
    ("delete -k kz/overlay", "v1.34+ delete message"),
    ("delete -f {HTTP}/prune2.yaml", "v1.34+ delete message"),
    ("delete ingress ing-gen ing-def", "v1.34+ delete message"),
    ("delete -f prune1.yaml", "v1.34+ delete message"),
    (
        "kustomize nosuchdir",
        "v1.32 klog line for a failed command",
    ),
    // Since v1.33 a zero creationTimestamp is omitted instead of printed as null.
    (
        "expose deployment web --port=80 --target-port=8080 --name=web-svc --dry-run=client -o yaml",
        "v1.33+ omits a null creationTimestamp",
    ),
    (
        "run busy2 --image=busybox:1.36 --env=A=1 --port=8080 --restart=Never --dry-run=client -o yaml",
        "v1.33+ omits a null creationTimestamp",
    ),
    (
        "auth whoami -o yaml",
        "v1.33+ omits a null creationTimestamp",
    ),
    // describe names container ports since v1.34 and words projected ConfigMaps as
    // "Optional" since v1.33.
    (
        "describe deployment rich",
        "v1.33+/v1.34+ pod template wording",
    ),
    ("describe deploy", "v1.33+/v1.34+ pod template wording"),
    // v1.32 reports cobra's missing required flags as a klog line; later releases as
    // `error: required flag(s) ...`, as we do.
    (
        "create service externalname bad-ext",
        "v1.32 klog line for a required flag",
    ),
    (
        "create cronjob bad-cj --image=busybox:1.36",
        "v1.32 klog line for a required flag",
    ),
    // Versions differ by nature, and we bundle no kustomize.
    (
        "version --client -o json",
        "client version and no kustomizeVersion",
    ),
];

#[tokio::test]
async fn our_kubectl_prints_what_upstreams_prints() {
    let s = TestApiServer::start(None, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.md");
    let summary = work.path().join("summary.json");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("hack/kubectl-golden.py"))
        .args(["--server", &format!("https://127.0.0.1:{}", s.port)])
        .args(["--token", "test-admin-token", "--upstream", "kubectl"])
        .arg("--ours")
        .arg(integration_tests::binary("kubectl"))
        .arg("--workdir")
        .arg(work.path().join("sessions"))
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg(&summary)
        .output()
        .expect("python3 runs the harness");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let differ: Vec<&str> = summary["differ"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    let unexpected: Vec<&&str> = differ
        .iter()
        .filter(|d| !KNOWN_DIFFERENCES.iter().any(|(k, _)| k == *d))
        .collect();
    let total = summary["total"].as_u64().unwrap();
    assert!(total >= 80, "the session has only {total} commands");
    assert!(
        unexpected.is_empty(),
        "commands whose output differs from upstream kubectl: {unexpected:?}\n{}",
        std::fs::read_to_string(&report).unwrap()
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
}
