//! RBAC with the real kubectl: the bootstrap roles exist, a user bound to `view` in one
//! namespace can read there, gets upstream's 403 elsewhere and on writes; system:masters
//! may do anything; discovery and whoami work for every authenticated user.

use integration_tests::apiserver::{TestApiServer, kubectl_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_in_one_namespace_only() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "admin-token,admin,1,system:masters\nalice-token,alice,2\ncarol-token,carol,3\nnode1-token,system:node:node1,4,system:nodes\n",
    )
    .unwrap();
    let s = TestApiServer::start_with_token(
        None,
        &[
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=Node,RBAC",
        ],
        Some("admin-token"),
    )
    .await;
    let admin = s.user_kubeconfig("admin", "    token: admin-token\n");
    let alice = s.user_kubeconfig("alice", "    token: alice-token\n");

    let (ok, out, err) = kubectl_as(
        &admin,
        &[
            "get",
            "clusterroles",
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "--no-headers",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    let setup = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-b}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: alice-view, namespace: team-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]\n";
    let (ok, _, err) = kubectl_as(&admin, &["apply", "-f", "-"], setup);
    assert!(ok, "{err}");

    // Reads in team-a are allowed; discovery and whoami for any authenticated user.
    let (ok, _, err) = kubectl_as(&alice, &["get", "pods", "-n", "team-a"], "");
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl_as(&alice, &["auth", "whoami"], "");
    assert!(ok && out.contains("alice"), "{err}");
    // Elsewhere, and for writes, upstream's 403.
    let (ok, _, err) = kubectl_as(&alice, &["get", "pods", "-n", "team-b"], "");
    assert!(!ok);
    assert!(err.contains(r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team-b""#), "{err}");
    let (ok, _, err) = kubectl_as(
        &alice,
        &["create", "-n", "team-a", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    assert!(!ok);
    assert!(err.contains(r#"User "alice" cannot create resource "configmaps" in API group "" in the namespace "team-a""#), "{err}");
    let (ok, _, err) = kubectl_as(&alice, &["get", "secrets", "-n", "team-a"], "");
    assert!(
        !ok && err.contains("cannot list resource \"secrets\""),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(&alice, &["get", "nodes"], "");
    assert!(!ok && err.contains("at the cluster scope"), "{err}");
    // kubectl auth can-i (SelfSubjectAccessReview) and --list (SelfSubjectRulesReview).
    let (ok, out, err) = kubectl_as(
        &alice,
        &["auth", "can-i", "list", "pods", "-n", "team-a"],
        "",
    );
    assert!(ok && out.trim() == "yes", "{out} {err}");
    let (ok, out, _) = kubectl_as(
        &alice,
        &["auth", "can-i", "create", "configmaps", "-n", "team-a"],
        "",
    );
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, out, _) = kubectl_as(
        &alice,
        &["auth", "can-i", "list", "pods", "-n", "team-b"],
        "",
    );
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, out, _) = kubectl_as(&admin, &["auth", "can-i", "delete", "nodes"], "");
    assert!(ok && out.trim() == "yes", "{out}");
    let (ok, out, err) = kubectl_as(&alice, &["auth", "can-i", "--list", "-n", "team-a"], "");
    assert!(ok, "{err}");
    let pods = out
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(pods.contains("[get list watch]"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("secrets ")), "{out}");

    // Escalation prevention: carol (admin in team-a) may grant what she holds, not more.
    let carol = s.user_kubeconfig("carol", "    token: carol-token\n");
    let bind_carol = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: carol-admin, namespace: team-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]\n";
    let (ok, _, err) = kubectl_as(&admin, &["apply", "-f", "-"], bind_carol);
    assert!(ok, "{err}");
    let role = |name: &str, resource: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: team-a}}\nrules: [{{apiGroups: [\"\"], resources: [{resource}], verbs: [get, list]}}]\n"
        )
    };
    let (ok, _, err) = kubectl_as(
        &carol,
        &["create", "-f", "-"],
        &role("secret-reader", "secrets"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(
        &carol,
        &["create", "-f", "-"],
        &role("node-reader", "nodes"),
    );
    assert!(
        !ok && err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    let bind = |name: &str, role: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: team-a}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: dave}}]\n"
        )
    };
    let (ok, _, err) = kubectl_as(&carol, &["create", "-f", "-"], &bind("dave-view", "view"));
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(
        &carol,
        &["create", "-f", "-"],
        &bind("dave-root", "cluster-admin"),
    );
    assert!(
        !ok && err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );

    // Node authorization: a kubelet reads only what pods bound to its node reference.
    let objects = "apiVersion: v1\nkind: Secret\nmetadata: {name: mine, namespace: team-a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: theirs, namespace: team-a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: team-a}\nspec: {nodeName: node1, containers: [{name: c, image: x, envFrom: [{secretRef: {name: mine}}]}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p2, namespace: team-a}\nspec: {nodeName: node2, volumes: [{name: s, secret: {secretName: theirs}}], containers: [{name: c, image: x}]}\n";
    let (ok, _, err) = kubectl_as(&admin, &["apply", "-f", "-"], objects);
    assert!(ok, "{err}");
    let node1 = s.user_kubeconfig("node1", "    token: node1-token\n");
    let (ok, _, err) = kubectl_as(&node1, &["get", "secret", "mine", "-n", "team-a"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(&node1, &["get", "secret", "theirs", "-n", "team-a"], "");
    assert!(
        !ok && err.contains(r#"User "system:node:node1" cannot get resource "secrets""#),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(&node1, &["get", "secrets", "-n", "team-a"], "");
    assert!(
        !ok && err.contains("cannot list resource \"secrets\""),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(&node1, &["get", "pods", "-A"], "");
    assert!(ok, "{err}");

    // A raw request gets the 403 Status.
    let r = integration_tests::client::Client::new(s.port)
        .with_token(Some("alice-token"))
        .get("/api/v1/namespaces/team-b/configmaps")
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "Forbidden");
    assert_eq!(r.json()["details"]["kind"], "configmaps");

    // Impersonation (kubectl --as): allowed to cluster admins, refused to others; the
    // components' bootstrap roles hold what they need.
    for (who, args, allowed) in [
        (
            "system:kube-scheduler",
            vec!["create", "pods", "--subresource=binding", "-n", "team-a"],
            true,
        ),
        ("system:kube-scheduler", vec!["list", "nodes"], true),
        ("system:kube-scheduler", vec!["delete", "nodes"], false),
        (
            "system:kube-proxy",
            vec!["watch", "endpointslices.discovery.k8s.io"],
            true,
        ),
        (
            "system:kube-controller-manager",
            vec!["list", "deployments.apps", "-A"],
            true,
        ),
        (
            "system:kube-controller-manager",
            vec![
                "create",
                "serviceaccounts",
                "--subresource=token",
                "-n",
                "x",
            ],
            true,
        ),
        // Controllers under --use-service-account-credentials, and namespaced roles.
        (
            "system:serviceaccount:kube-system:deployment-controller",
            vec!["create", "replicasets.apps", "-n", "x"],
            true,
        ),
        (
            "system:serviceaccount:kube-system:deployment-controller",
            vec!["delete", "nodes"],
            false,
        ),
        (
            "system:serviceaccount:kube-system:namespace-controller",
            vec!["deletecollection", "widgets.example.com", "-n", "x"],
            true,
        ),
        (
            "system:kube-scheduler",
            vec![
                "get",
                "configmaps/extension-apiserver-authentication",
                "-n",
                "kube-system",
            ],
            true,
        ),
        (
            "system:kube-scheduler",
            vec!["get", "configmaps/other", "-n", "kube-system"],
            false,
        ),
    ] {
        let mut a = vec!["auth", "can-i", "--as", who];
        a.extend(args.iter().copied());
        let (ok, out, err) = kubectl_as(&admin, &a, "");
        assert_eq!(ok, allowed, "{who} {args:?}: {out} {err}");
    }
    let (ok, _, err) = kubectl_as(
        &admin,
        &["get", "pods", "-n", "team-b", "--as", "alice"],
        "",
    );
    assert!(
        !ok && err.contains(r#"User "alice" cannot list resource "pods""#),
        "{err}"
    );
    let (ok, _, err) = kubectl_as(
        &alice,
        &["get", "pods", "-n", "team-a", "--as", "admin"],
        "",
    );
    assert!(!ok);
    assert!(
        err.contains(r#"users "admin" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );

    // SubjectAccessReview / LocalSubjectAccessReview ask about another user.
    let review = |kind: &str, ns: &str, user: &str| {
        serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": kind,
            "spec": {"user": user, "resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}}})
    };
    let c = &s.client;
    let r = c
        .send_json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &review("SubjectAccessReview", "team-a", "alice"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"]["allowed"], true);
    let local = "/apis/authorization.k8s.io/v1/namespaces/team-b/localsubjectaccessreviews";
    let r = c
        .send_json(
            "POST",
            local,
            &review("LocalSubjectAccessReview", "team-b", "alice"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"]["allowed"], false);
    assert_eq!(r.json()["metadata"]["namespace"], "team-b");
    let r = c
        .send_json(
            "POST",
            local,
            &review("LocalSubjectAccessReview", "team-a", "alice"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "spec.resourceAttributes.namespace must match namespace: team-b"
    );
    let r = c
        .send_json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &review("SubjectAccessReview", "team-a", ""),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
}
