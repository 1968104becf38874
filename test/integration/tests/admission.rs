//! Admission with the real kubectl: PodSecurity levels from namespace labels (enforce
//! refuses with upstream's message, warn and workload templates warn, tightening a
//! namespace warns about its pods) and ResourceQuota charging usage at admission.

use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};

const PRIVILEGED_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec:\n  containers: [{name: c, image: busybox, securityContext: {privileged: true}}]\n";

#[tokio::test]
async fn pod_security_levels_from_namespace_labels() {
    let s = TestApiServer::start(None, &[]).await;
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: locked\n  labels: {pod-security.kubernetes.io/enforce: restricted}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: watched\n  labels: {pod-security.kubernetes.io/warn: baseline}\n"),
    );
    let (ok, _, err) = s.kubectl(&["create", "-n", "locked", "-f", "-"], Some(PRIVILEGED_POD));
    assert!(!ok);
    assert!(
        err.contains(r#"pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#),
        "{err}"
    );
    // A pod meeting the restricted standard is admitted.
    let good = "apiVersion: v1\nkind: Pod\nmetadata: {name: good}\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: c, image: busybox, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n";
    s.kubectl_ok(&["create", "-n", "locked", "-f", "-"], Some(good));

    // warn: admitted with a warning; a workload's template is warned about too.
    let (ok, _, err) = s.kubectl(
        &["create", "-n", "watched", "-f", "-"],
        Some(PRIVILEGED_POD),
    );
    assert!(ok, "{err}");
    assert!(
        err.contains(r#"Warning: would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#),
        "{err}"
    );
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: host}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {hostNetwork: true, containers: [{name: c, image: nginx}]}\n";
    let (ok, _, err) = s.kubectl(&["create", "-n", "watched", "-f", "-"], Some(deploy));
    assert!(ok, "{err}");
    assert!(
        err.contains(
            r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#
        ),
        "{err}"
    );

    // Tightening enforcement warns about the pods already running there.
    let (ok, _, err) = s.kubectl(
        &[
            "label",
            "ns",
            "watched",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        err.contains(r#"existing pods in namespace "watched" violate the new PodSecurity enforce level "baseline:latest""#)
            && err.contains("priv: privileged"),
        "{err}"
    );
    // Bad label values are refused.
    let (ok, _, err) = s.kubectl(
        &[
            "label",
            "ns",
            "watched",
            "--overwrite",
            "pod-security.kubernetes.io/enforce=strict",
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("must be one of privileged, baseline, restricted"),
        "{err}"
    );
}

#[tokio::test]
async fn resource_quota_charges_and_refuses() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    let base = "/api/v1/namespaces/default";
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
        "spec": {"hard": {"pods": "3", "requests.cpu": "1"}}});
    assert_eq!(
        c.send_json("POST", &format!("{base}/resourcequotas"), &quota)
            .await
            .status,
        201
    );
    let pod = |name: &str, cpu: Option<&str>| {
        let resources = match cpu {
            Some(cpu) => json!({"requests": {"cpu": cpu}}),
            None => json!({}),
        };
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}})
    };
    // Until the quota controller has filled in its status, pods it constrains wait.
    let r = c
        .send_json("POST", &format!("{base}/pods"), &pod("a", Some("600m")))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "pods \"a\" is forbidden: status unknown for quota: compute, resource: pods,requests.cpu"
    );
    // Status as the quota controller writes it.
    let mut q = c
        .get(&format!("{base}/resourcequotas/compute"))
        .await
        .json();
    q["status"] = json!({"hard": {"pods": "3", "requests.cpu": "1"}, "used": {"pods": "0", "requests.cpu": "0"}});
    let r = c
        .send_json("PUT", &format!("{base}/resourcequotas/compute/status"), &q)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = c
        .send_json("POST", &format!("{base}/pods"), &pod("a", Some("600m")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let used = &c
        .get(&format!("{base}/resourcequotas/compute"))
        .await
        .json()["status"]["used"];
    assert_eq!(*used, json!({"pods": "1", "requests.cpu": "600m"}));

    let r = c
        .send_json("POST", &format!("{base}/pods"), &pod("b", Some("600m")))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "Forbidden");
    assert_eq!(
        r.json()["message"],
        "pods \"b\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
    let r = c
        .send_json("POST", &format!("{base}/pods"), &pod("c", None))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "pods \"c\" is forbidden: failed quota: compute: must specify requests.cpu for: c"
    );
    // A dry run is checked but not charged.
    let r = c
        .send_json(
            "POST",
            &format!("{base}/pods?dryRun=All"),
            &pod("d", Some("400m")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let used: Value = c
        .get(&format!("{base}/resourcequotas/compute"))
        .await
        .json()["status"]["used"]
        .clone();
    assert_eq!(used["requests.cpu"], "600m");
    // kubectl shows the refusal as upstream's.
    let (ok, _, err) = s.kubectl(
        &["run", "e", "--image=busybox", "--overrides", r#"{"spec":{"containers":[{"name":"e","image":"busybox","resources":{"requests":{"cpu":"2"}}}]}}"#],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=600m, limited: requests.cpu=1"),
        "{err}"
    );
}

#[tokio::test]
async fn default_plugins_shape_pods_nodes_and_claims() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "admin-token,admin,1,system:masters\nnode1-token,system:node:n1,2,system:nodes\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--disable-admission-plugins=ServiceAccount",
        ],
        Some("admin-token"),
    )
    .await;
    let c = &s.client;
    let ns = "/api/v1/namespaces/default";
    let post = |path: String, body: Value| async move { c.send_json("POST", &path, &body).await };
    let pod = |name: &str, extra: Value| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        for (k, v) in extra.as_object().unwrap() {
            p["spec"][k] = v.clone();
        }
        p
    };

    // Priority and DefaultTolerationSeconds.
    let r = post(format!("{ns}/pods"), pod("plain", json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let p = r.json();
    assert_eq!(p["spec"]["priority"], 0);
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(
        p["spec"]["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ])
    );
    let pc = |name: &str| json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000, "globalDefault": true});
    assert_eq!(
        post(
            "/apis/scheduling.k8s.io/v1/priorityclasses".into(),
            pc("high")
        )
        .await
        .status,
        201
    );
    let r = post(
        "/apis/scheduling.k8s.io/v1/priorityclasses".into(),
        pc("higher"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "priorityclasses.scheduling.k8s.io \"higher\" is forbidden: PriorityClass high is already marked as default. Only one default can exist"
    );
    let p = post(format!("{ns}/pods"), pod("defaulted", json!({})))
        .await
        .json();
    assert_eq!(
        (
            p["spec"]["priorityClassName"].clone(),
            p["spec"]["priority"].clone()
        ),
        (json!("high"), json!(1000))
    );
    let r = post(
        format!("{ns}/pods"),
        pod("unknown", json!({"priorityClassName": "nope"})),
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "pods \"unknown\" is forbidden: no PriorityClass with name nope was found"
    );

    // LimitRanger: defaults, then limits.
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "cpu"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "max": {"cpu": "1"}}]}});
    assert_eq!(post(format!("{ns}/limitranges"), lr).await.status, 201);
    let p = post(format!("{ns}/pods"), pod("limited", json!({})))
        .await
        .json();
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "500m"}})
    );
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container c; cpu limit for container c"
    );
    let big =
        json!({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "2"}}}]});
    let r = post(format!("{ns}/pods"), pod("big", big)).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );

    // RuntimeClass: must exist; its overhead is the pod's.
    let r = post(
        format!("{ns}/pods"),
        pod("gv", json!({"runtimeClassName": "gvisor"})),
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "pods \"gv\" is forbidden: pod rejected: RuntimeClass \"gvisor\" not found"
    );
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc", "overhead": {"podFixed": {"memory": "64Mi"}}});
    assert_eq!(
        post("/apis/node.k8s.io/v1/runtimeclasses".into(), rc)
            .await
            .status,
        201
    );
    let p = post(
        format!("{ns}/pods"),
        pod("gv", json!({"runtimeClassName": "gvisor"})),
    )
    .await
    .json();
    assert_eq!(p["spec"]["overhead"], json!({"memory": "64Mi"}));

    // Claims: protection finalizer and the default StorageClass.
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"});
    assert_eq!(
        post("/apis/storage.k8s.io/v1/storageclasses".into(), sc)
            .await
            .status,
        201
    );
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let p = post(format!("{ns}/persistentvolumeclaims"), pvc)
        .await
        .json();
    assert_eq!(p["spec"]["storageClassName"], "fast");
    assert_eq!(
        p["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );

    // Nodes start tainted; a kubelet may only touch its own Node and mirror pods.
    let node = |name: &str| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    let p = post("/api/v1/nodes".into(), node("n2")).await.json();
    assert_eq!(
        p["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );
    let kubelet = integration_tests::client::Client::new(s.port).with_token(Some("node1-token"));
    let r = kubelet
        .send_json("POST", "/api/v1/nodes", &node("n1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = kubelet
        .request(
            "PATCH",
            "/api/v1/nodes/n2",
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
    );
    let mut own = pod("own", json!({"nodeName": "n1"}));
    let r = kubelet.send_json("POST", &format!("{ns}/pods"), &own).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "pods \"own\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
    );
    own["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    let r = kubelet.send_json("POST", &format!("{ns}/pods"), &own).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// `--allow-privileged=false` (upstream's default) refuses privileged containers in pods
/// and in workload templates, whatever the namespace's PodSecurity level.
#[tokio::test]
async fn privileged_containers_need_allow_privileged() {
    let s = TestApiServer::start(None, &["--allow-privileged=false"]).await;
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(PRIVILEGED_POD));
    assert!(!ok);
    assert!(
        err.contains(r#"Pod "priv" is invalid: spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"#),
        "{err}"
    );
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      initContainers: [{name: i, image: busybox, securityContext: {privileged: true}}]\n      containers: [{name: c, image: busybox}]\n";
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(deploy));
    assert!(!ok);
    assert!(
        err.contains("spec.template.spec.initContainers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"),
        "{err}"
    );
    // An unprivileged pod is fine.
    s.kubectl_ok(
        &["run", "plain", "--image=busybox", "--restart=Never"],
        None,
    );
}

/// Upstream v1.35's default plugin set, in its order, and no plugin name accepted that
/// would then do nothing.
#[tokio::test]
async fn default_plugin_set_and_unbuilt_plugins_refused() {
    // An empty flag keeps the harness from disabling ServiceAccount: upstream's defaults.
    let s = TestApiServer::start(None, &["--enable-admission-plugins="]).await;
    let loaded = wait_log(
        &s,
        "admission controller(s) successfully in the following order: ",
    );
    assert_eq!(
        loaded,
        "NamespaceLifecycle,LimitRanger,ServiceAccount,TaintNodesByCondition,PodSecurity,Priority,DefaultTolerationSeconds,DefaultStorageClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,CertificateApproval,CertificateSigning,ClusterTrustBundleAttest,CertificateSubjectRestriction,DefaultIngressClass,PodTopologyLabels,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota"
    );
    for (flag, named) in [
        (
            "--enable-admission-plugins=PodNodeSelector",
            "PodNodeSelector",
        ),
        (
            "--enable-admission-plugins=EventRateLimit,NodeRestriction",
            "EventRateLimit",
        ),
        ("--enable-admission-plugins=NoSuchPlugin", "NoSuchPlugin"),
        (
            "--disable-admission-plugins=AlsoNoSuchPlugin",
            "AlsoNoSuchPlugin",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(integration_tests::binary("kube-apiserver"))
            .args([
                flag,
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", integration_tests::free_port()),
                &format!("--cert-dir={}", dir.path().join("certs").display()),
                &format!("--data-dir={}", dir.path().join("data").display()),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: started");
        assert!(err.contains(named), "{flag}: {err}");
    }
}

/// The value after `prefix` on the first log line that has it.
fn wait_log(s: &TestApiServer, prefix: &str) -> String {
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in the log: {log}"));
    let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
    rest.trim_end().trim_end_matches('.').to_string()
}

/// A CSR's approval, signing and subject are checked against the signer as upstream's
/// certificate plugins do; claims grow only where their class allows.
#[tokio::test]
async fn certificate_and_claim_resize_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "admin-token,admin,1,system:masters\napprover-token,approver,2\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=RBAC",
        ],
        Some("admin-token"),
    )
    .await;
    let c = &s.client;
    // A CSR request for CN=x, O=<org>, made with the real openssl.
    let csr = |org: &str| {
        integration_tests::openssl(
            dir.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "k.pem",
                "-subj",
                &format!("/CN=x/O={org}"),
            ],
        )
    };
    let b64 = |s: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let create = |name: &str, signer: &str, org: &str| {
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": b64(csr(org)), "signerName": signer, "usages": ["client auth"]}})
    };
    // CertificateSubjectRestriction.
    let r = c
        .send_json(
            "POST",
            csrs,
            &create(
                "masters",
                "kubernetes.io/kube-apiserver-client",
                "system:masters",
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "certificatesigningrequests.certificates.k8s.io \"masters\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    );
    let r = c
        .send_json("POST", csrs, &create("dev", "example.com/signer", "dev"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // CertificateApproval: updating the approval subresource is not enough; the approver
    // must be allowed to `approve` for the signer (or its domain's wildcard).
    let admin = s.user_kubeconfig("admin", "    token: admin-token\n");
    let rbac = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: csr-approver}\nrules:\n- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests, certificatesigningrequests/approval], verbs: [get, update]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: csr-approver}\nroleRef: {kind: ClusterRole, name: csr-approver}\nsubjects: [{kind: User, name: approver}]\n";
    let (ok, _, err) =
        integration_tests::apiserver::kubectl_as(&admin, &["apply", "-f", "-"], rbac);
    assert!(ok, "{err}");
    let approver = c.clone().with_token(Some("approver-token"));
    let approve = || async {
        let mut csr = approver.get(&format!("{csrs}/dev")).await.json();
        csr["status"]["conditions"] =
            json!([{"type": "Approved", "status": "True", "reason": "Test", "message": "ok"}]);
        approver
            .send_json("PUT", &format!("{csrs}/dev/approval"), &csr)
            .await
    };
    let r = approve().await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "certificatesigningrequests.certificates.k8s.io \"dev\" is forbidden: user not permitted to approve requests with signerName \"example.com/signer\""
    );
    let signers = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: approve-example}\nrules:\n- {apiGroups: [certificates.k8s.io], resources: [signers], resourceNames: [example.com/*], verbs: [approve]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: approve-example}\nroleRef: {kind: ClusterRole, name: approve-example}\nsubjects: [{kind: User, name: approver}]\n";
    let (ok, _, err) =
        integration_tests::apiserver::kubectl_as(&admin, &["apply", "-f", "-"], signers);
    assert!(ok, "{err}");
    let r = approve().await;
    assert_eq!(r.status, 200, "{}", r.text());

    // PersistentVolumeClaimResize: only bound claims of an expandable class grow.
    for (name, expand) in [("fixed", false), ("elastic", true)] {
        let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "example.com/p", "allowVolumeExpansion": expand});
        assert_eq!(
            c.send_json("POST", "/apis/storage.k8s.io/v1/storageclasses", &sc)
                .await
                .status,
            201
        );
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"storageClassName": name, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
        assert_eq!(c.send_json("POST", pvcs, &pvc).await.status, 201);
        let path = format!("{pvcs}/{name}");
        let grow = || {
            c.request(
                "PATCH",
                &path,
                "application/merge-patch+json",
                r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
            )
        };
        // An unbound claim's size is immutable: validation refuses it before the
        // admission plugin is asked, as upstream's update path orders them.
        let r = grow().await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(
            r.text()
                .contains("spec is immutable after creation except resources.requests"),
            "{}",
            r.text()
        );
        let r = c
            .request(
                "PATCH",
                &format!("{pvcs}/{name}/status"),
                "application/merge-patch+json",
                r#"{"status":{"phase":"Bound"}}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = grow().await;
        if expand {
            assert_eq!(r.status, 200, "{}", r.text());
        } else {
            assert_eq!(r.status, 403, "{}", r.text());
            assert!(
                r.text()
                    .contains("the storageclass that provisions the pvc must support resize"),
                "{}",
                r.text()
            );
        }
    }
}

/// The write path runs in upstream's order: validating admission (policies, quota) sees
/// the generated name and only objects that passed validation.
#[tokio::test]
async fn validating_admission_runs_after_validation() {
    let s = TestApiServer::start(None, &[]).await;
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: named}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations: [{expression: "object.metadata.name.startsWith('gen-')", message: "unnamed"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: named}
spec: {policyName: named, validationActions: [Deny]}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: one, namespace: default}
spec: {hard: {count/configmaps: "2"}}
"#;
    s.kubectl_ok(&["apply", "-f", "-"], Some(policy));
    let c = &s.client;
    // No quota controller runs here: its status is set as the controller would.
    let r = c
        .request(
            "PATCH",
            "/api/v1/namespaces/default/resourcequotas/one/status",
            "application/merge-patch+json",
            r#"{"status":{"hard":{"count/configmaps":"2"},"used":{"count/configmaps":"0"}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cms = "/api/v1/namespaces/default/configmaps";
    // generateName: the policy sees the generated name (wait until it is in force).
    let generated =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
    integration_tests::wait_for(
        "the policy and quota in force",
        std::time::Duration::from_secs(20),
        || async {
            let bad =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}});
            (c.send_json("POST", cms, &bad).await.status == 422).then_some(())
        },
    )
    .await;
    let r = c.send_json("POST", cms, &generated).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.json()["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gen-")
    );
    // Invalid objects are refused by validation and charge no quota: the quota of 2
    // (kube-root-ca.crt is not there without a controller-manager) still takes one more.
    for _ in 0..3 {
        let bad =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gen-Bad_Name"}});
        assert_eq!(c.send_json("POST", cms, &bad).await.status, 422);
    }
    let r = c.send_json("POST", cms, &generated).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c.send_json("POST", cms, &generated).await;
    assert_eq!(r.status, 403, "quota now used up: {}", r.text());
}
