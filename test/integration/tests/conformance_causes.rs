//! The causes behind upstream conformance failures seen on our cluster (one check per
//! cause, named after the spec that found it), against one apiserver.

use integration_tests::apiserver::TestApiServer;
use integration_tests::client::Client;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_machinery_causes() {
    let s = TestApiServer::start(None, &[]).await;
    let c = &s.client;
    secrets_and_configmaps_stay_immutable(c).await;
    tables_only_where_upstream_has_them(c).await;
    strict_decoding_reports_every_unknown_and_duplicate_field(c).await;
    service_type_changes_release_and_allocate(c).await;
    policy_variables_refer_to_each_other(c).await;
    custom_resources_are_defaulted_from_storage(c).await;
    custom_resources_are_published_in_openapi(c).await;
    status_patches_keep_the_metadata_upstream_keeps(c).await;
    strategic_patches_put_new_list_items_first(c).await;
}

/// "should list, patch and delete a collection of StatefulSets" patches a container the
/// template lacks and expects it at index 0: strategic merge puts an item the live list
/// lacks before the live list's own (upstream's `normalizeElementOrder`); we appended it.
async fn strategic_patches_put_new_list_items_first(c: &Client) {
    let sets = "/apis/apps/v1/namespaces/default/statefulsets";
    let ss = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "test-ss"},
        "spec": {"replicas": 1, "serviceName": "test", "selector": {"matchLabels": {"name": "sample-pod"}},
            "template": {"metadata": {"labels": {"name": "sample-pod"}},
                "spec": {"containers": [{"name": "webserver", "image": "httpd"}]}}}});
    c.create(sets, &ss).await;
    let r = c
        .request(
            "PATCH",
            &format!("{sets}/test-ss"),
            "application/strategic-merge-patch+json",
            r#"{"metadata":{"labels":{"test-ss":"patched"}},"spec":{"replicas":2,"template":{"spec":{"TerminationGracePeriodSeconds":1,"containers":[{"name":"test-ss","image":"pause"}]}}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = c.get(&format!("{sets}/test-ss")).await.json();
    let containers = &got["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "pause", "{containers}");
    assert_eq!(containers[1]["name"], "webserver", "{containers}");
    let r = c
        .request(
            "DELETE",
            &format!("{sets}?labelSelector=test-ss%3Dpatched"),
            "application/json",
            r#"{"gracePeriodSeconds":1}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let left = c
        .get("/apis/apps/v1/statefulsets?labelSelector=test-ss%3Dpatched")
        .await
        .json();
    assert_eq!(left["items"], json!([]), "{left}");
}

/// The lifecycle specs of Ingress, Job, ReplicaSet, ... patch `/status` together with an
/// annotation and expect the annotation kept; a Deployment's status strategy drops label
/// changes, a custom resource's every metadata change.
async fn status_patches_keep_the_metadata_upstream_keeps(c: &Client) {
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
        "spec": {"defaultBackend": {"service": {"name": "default-backend", "port": {"number": 8080}}}}});
    let ingresses = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
    c.create(ingresses, &ingress).await;
    let r = c
        .request(
            "PATCH",
            &format!("{ingresses}/ing/status"),
            "application/merge-patch+json",
            r#"{"metadata":{"annotations":{"patchedstatus":"true"},"labels":{"l":"v"}},"status":{"loadBalancer":{"ingress":[{"ip":"169.1.1.1"}]}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = r.json();
    assert_eq!(
        got["metadata"]["annotations"]["patchedstatus"], "true",
        "{got}"
    );
    assert_eq!(got["metadata"]["labels"]["l"], "v", "{got}");
    assert_eq!(
        got["status"]["loadBalancer"]["ingress"][0]["ip"],
        "169.1.1.1"
    );

    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    // Three replicas: the policy of `policy_variables_refer_to_each_other` still applies.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "status-meta"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "sm"}},
            "template": {"metadata": {"labels": {"app": "sm"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    c.create(deployments, &d).await;
    let r = c
        .request(
            "PATCH",
            &format!("{deployments}/status-meta/status"),
            "application/merge-patch+json",
            r#"{"metadata":{"annotations":{"patchedstatus":"true"},"labels":{"l":"v"}},"status":{"observedGeneration":1}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = r.json();
    assert_eq!(
        got["metadata"]["annotations"]["patchedstatus"], "true",
        "{got}"
    );
    assert!(got["metadata"]["labels"]["l"].is_null(), "{got}");
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI: works for multiple CRDs of
/// different groups; removes definition from spec when one version gets changed to not
/// be served.
async fn custom_resources_are_published_in_openapi(c: &Client) {
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                "properties": {"bars": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}}}})
    };
    for (group, versions) in [
        ("foo.publish.example.com", vec![version("v1", true)]),
        (
            "waldo.publish.example.com",
            vec![version("v2", true), version("v3", false)],
        ),
    ] {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("e2es.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "e2es", "singular": "e2e", "kind": "E2e", "listKind": "E2eList"},
                "versions": versions}});
        c.create(crds, &crd).await;
    }
    let definitions = || async { c.get("/openapi/v2").await.json()["definitions"].clone() };
    let wanted = [
        "com.example.publish.foo.v1.E2e",
        "com.example.publish.waldo.v2.E2e",
        "com.example.publish.waldo.v3.E2e",
    ];
    integration_tests::wait_for(
        "every definition published",
        std::time::Duration::from_secs(10),
        || async {
            let d = definitions().await;
            wanted.iter().all(|w| d.get(*w).is_some()).then_some(())
        },
    )
    .await;
    let path = format!("{crds}/e2es.waldo.publish.example.com");
    let mut crd = c.get(&path).await.json();
    crd["spec"]["versions"][1]["served"] = json!(false);
    assert_eq!(c.send_json("PUT", &path, &crd).await.status, 200);
    integration_tests::wait_for(
        "v3 removed from the spec",
        std::time::Duration::from_secs(10),
        || async {
            let d = definitions().await;
            (d.get("com.example.publish.waldo.v3.E2e").is_none()
                && d.get("com.example.publish.waldo.v2.E2e").is_some())
            .then_some(())
        },
    )
    .await;
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin]
/// custom resource defaulting for requests and from storage works.
async fn custom_resources_are_defaulted_from_storage(c: &Client) {
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let schema = |b_default: bool| {
        let mut b = json!({"type": "string"});
        if b_default {
            b["default"] = json!("B");
        }
        json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string", "default": "A"}, "b": b}}}}})
    };
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "defaulteds.dflt.example.com"},
        "spec": {"group": "dflt.example.com", "scope": "Namespaced",
            "names": {"plural": "defaulteds", "singular": "defaulted", "kind": "Defaulted", "listKind": "DefaultedList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": schema(false)}]}});
    c.create(crds, &crd).await;
    let items = "/apis/dflt.example.com/v1/namespaces/default/defaulteds";
    let cr = json!({"apiVersion": "dflt.example.com/v1", "kind": "Defaulted",
        "metadata": {"name": "stored"}, "spec": {}});
    let created = integration_tests::wait_for(
        "the CRD served",
        std::time::Duration::from_secs(10),
        || async {
            let r = c.send_json("POST", items, &cr).await;
            (r.status == 201).then(|| r.json())
        },
    )
    .await;
    assert_eq!(created["spec"], json!({"a": "A"}), "defaulted on create");
    // A default added later shows on the stored object when it is read.
    let mut current = c
        .get(&format!("{crds}/defaulteds.dflt.example.com"))
        .await
        .json();
    current["spec"]["versions"][0]["schema"] = schema(true);
    let r = c
        .send_json(
            "PUT",
            &format!("{crds}/defaulteds.dflt.example.com"),
            &current,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    integration_tests::wait_for(
        "b defaulted on GET",
        std::time::Duration::from_secs(10),
        || async {
            let got = c.get(&format!("{items}/stored")).await.json();
            (got["spec"] == json!({"a": "A", "b": "B"})).then_some(())
        },
    )
    .await;
    let list = c.get(items).await.json();
    assert_eq!(
        list["items"][0]["spec"],
        json!({"a": "A", "b": "B"}),
        "from a list"
    );
}

/// [sig-api-machinery] ValidatingAdmissionPolicy should allow expressions to refer
/// variables: `variables.replicas` from the object, `variables.oddReplicas` from it.
async fn policy_variables_refer_to_each_other(c: &Client) {
    let admission = "/apis/admissionregistration.k8s.io/v1";
    let policy = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "variables.example.com"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "variables": [{"name": "replicas", "expression": "object.spec.replicas"},
                {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}],
            "validations": [{"expression": "variables.replicas > 1"}, {"expression": "variables.oddReplicas"}]}});
    c.create(&format!("{admission}/validatingadmissionpolicies"), &policy)
        .await;
    let binding = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "variables.example.com"},
        "spec": {"policyName": "variables.example.com", "validationActions": ["Deny"]}});
    c.create(
        &format!("{admission}/validatingadmissionpolicybindings"),
        &binding,
    )
    .await;
    let deployment = |name: &str, replicas: u32| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    };
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    // In effect once the cache holds the binding: an even replica count is then denied.
    let denied = integration_tests::wait_for(
        "the policy in effect",
        std::time::Duration::from_secs(10),
        || async {
            let r = c
                .send_json("POST", deployments, &deployment("even", 2))
                .await;
            if r.status == 201 {
                c.request("DELETE", &format!("{deployments}/even"), "", "")
                    .await;
            }
            (r.status == 422).then_some(r)
        },
    )
    .await;
    assert!(
        denied
            .text()
            .contains("failed expression: variables.oddReplicas"),
        "{}",
        denied.text()
    );
    c.create(deployments, &deployment("replicated", 3)).await;
    let r = c
        .send_json("POST", deployments, &deployment("single", 1))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text()
            .contains("failed expression: variables.replicas > 1"),
        "{}",
        r.text()
    );
}

/// [sig-network] Services should be able to change the type from ClusterIP/NodePort to
/// ExternalName and from ExternalName to NodePort (the service jig's get-mutate-update).
async fn service_type_changes_release_and_allocate(c: &Client) {
    let svcs = "/api/v1/namespaces/default/services";
    let update = |name: &'static str, f: fn(&mut Value)| async move {
        let path = format!("{svcs}/{name}");
        let mut cur = c.get(&path).await.json();
        f(&mut cur);
        let r = c.send_json("PUT", &path, &cur).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let to_external = |s: &mut Value| {
        s["spec"]["type"] = json!("ExternalName");
        s["spec"]["externalName"] = json!("foo.example.com");
    };
    for (name, t) in [("cip-to-ext", "ClusterIP"), ("np-to-ext", "NodePort")] {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": t, "selector": {"app": name}, "ports": [{"port": 80}]}});
        let created = c.create(svcs, &svc).await;
        let ip = created["spec"]["clusterIP"].as_str().unwrap().to_string();
        let out = update(name, to_external).await;
        assert!(out["spec"]["clusterIP"].is_null(), "{t}: {out}");
        assert!(out["spec"]["clusterIPs"].is_null(), "{t}: {out}");
        assert!(out["spec"]["ports"][0]["nodePort"].is_null(), "{t}: {out}");
        // The IP is free again: another Service can ask for it.
        let again = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("{name}-reuse")},
            "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        let r = c.send_json("POST", svcs, &again).await;
        assert_eq!(r.status, 201, "{t}: the released IP {ip}: {}", r.text());
    }
    let out = update("cip-to-ext", |s| {
        s["spec"]["type"] = json!("NodePort");
        s["spec"].as_object_mut().unwrap().remove("externalName");
    })
    .await;
    assert!(
        out["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "{out}"
    );
    assert!(
        out["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .is_some_and(|p| p >= 30000),
        "{out}"
    );
}

/// [sig-api-machinery] FieldValidation: the requests and expected messages of upstream's
/// `test/e2e/apimachinery/field_validation.go`.
async fn strict_decoding_reports_every_unknown_and_duplicate_field(c: &Client) {
    let deployments = "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict&fieldManager=field_validation_mgr";
    let body = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "my-dep", "labels": {"app": "nginx"}},
        "spec": {"unknownField": "foo", "replicas": 2, "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}"#;
    let r = c
        .request("POST", deployments, "application/json", body)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains(r#"strict decoding error: unknown field \"spec.unknownField\", duplicate field \"spec.replicas\""#),
        "{}",
        r.text()
    );
    let body = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "my-dep", "unknownMeta": "foo", "labels": {"app": "nginx"}},
        "spec": {"selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}"#;
    let r = c
        .request("POST", deployments, "application/json", body)
        .await;
    assert!(
        r.text()
            .contains(r#"strict decoding error: unknown field \"metadata.unknownMeta\""#),
        "{}",
        r.text()
    );
    // Warn: the same findings as warnings, and the object is created.
    let warn = deployments.replace("Strict", "Warn");
    let body = body.replace("\"unknownMeta\": \"foo\", ", "\"labels\": {}, ");
    let r = c.request("POST", &warn, "application/json", body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let warning = r
        .headers
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains(r#"duplicate field \"metadata.labels\""#)),
        "{warning:?}"
    );

    // Custom resources, applied as YAML with Strict validation.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "noxus.fv.example.com"},
        "spec": {"group": "fv.example.com", "scope": "Cluster",
            "names": {"plural": "noxus", "singular": "noxu", "kind": "Noxu", "listKind": "NoxuList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"foo": {"type": "string"}, "cronSpec": {"type": "string"},
                            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                                    "spec": {"type": "object"}}}}}}}}}]}});
    c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    let apply = |name: &str, yaml: String| {
        let path = format!(
            "/apis/fv.example.com/v1/noxus/{name}?fieldManager=field_validation_mgr&fieldValidation=Strict"
        );
        async move {
            integration_tests::wait_for(
                "the CRD served",
                std::time::Duration::from_secs(10),
                || {
                    let (path, yaml) = (path.clone(), yaml.clone());
                    async move {
                        let r = c
                            .request("PATCH", &path, "application/apply-patch+yaml", yaml)
                            .await;
                        (r.status != 404).then_some(r)
                    }
                },
            )
            .await
        }
    };
    let r = apply("mytest", "\napiVersion: fv.example.com/v1\nkind: Noxu\nmetadata:\n  name: mytest\n  finalizers:\n  - test-finalizer\nspec:\n  unknown: uk1\n  foo: foo1\n  foo: foo2\n  cronSpec: \"* * * * */5\"\n".into()).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains(r#"line 11: key \"foo\" already set in map"#),
        "{}",
        r.text()
    );
    let r = apply("mytest", "\napiVersion: fv.example.com/v1\nkind: Noxu\nmetadata:\n  name: mytest\nunknownField: unknown\nspec:\n  foo: foo1\n".into()).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains(".unknownField: field not declared in schema"),
        "{}",
        r.text()
    );
    let r = apply("mytest", "\napiVersion: fv.example.com/v1\nkind: Noxu\nmetadata:\n  name: mytest\n  unknownMeta: unknown\nspec:\n  template:\n    apiVersion: foo/v1\n    kind: Sub\n    metadata:\n      unknownSubMeta: unknown\n      name: subobject\n".into()).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains(".spec.template.metadata.unknownSubMeta: field not declared in schema")
            || r.text()
                .contains(".metadata.unknownMeta: field not declared in schema"),
        "{}",
        r.text()
    );
    let r = apply("mytest", "\napiVersion: fv.example.com/v1\nkind: Noxu\nmetadata:\n  name: mytest\nspec:\n  unknown: uk1\n  foo: foo1\n".into()).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// [sig-api-machinery] Servers with support for Table transformation should return a 406
/// for a backend which does not implement metadata.
async fn tables_only_where_upstream_has_them(c: &Client) {
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}});
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = c
        .request_accepting("POST", path, "application/json", table, ssar.to_string())
        .await;
    assert_eq!(r.status, 406, "{}", r.text());
    assert_eq!(r.json()["reason"], "NotAcceptable");
    let r = c
        .request_accepting("GET", "/api/v1/namespaces", "", table, "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "Table");
}

/// [sig-storage] Secrets/ConfigMap should be immutable if `immutable` field is set.
async fn secrets_and_configmaps_stay_immutable(c: &Client) {
    for (plural, kind) in [("secrets", "Secret"), ("configmaps", "ConfigMap")] {
        let path = format!("/api/v1/namespaces/default/{plural}");
        let obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "immutable"},
            "data": {"data-1": "dmFsdWUtMQo="}});
        let mut cur = c.create(&path, &obj).await;
        let item = format!("{path}/immutable");
        cur["immutable"] = json!(true);
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let mut cur = r.json();
        cur["data"]["data-5"] = json!("dmFsdWUtNQo=");
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(
            r.status,
            422,
            "{kind}: data of an immutable object: {}",
            r.text()
        );
        assert_eq!(
            r.json()["details"]["causes"][0],
            json!({"reason": "FieldValueForbidden", "message": "Forbidden: field is immutable when `immutable` is set", "field": "data"})
        );
        let mut cur = c.get(&item).await.json();
        cur["immutable"] = json!(false);
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(
            r.status,
            422,
            "{kind}: immutable back to false: {}",
            r.text()
        );
        assert_eq!(r.json()["details"]["causes"][0]["field"], "immutable");
        let mut cur = c.get(&item).await.json();
        cur["metadata"]["labels"] = json!({"label1": "value1"});
        let r = c.send_json("PUT", &item, &cur).await;
        assert_eq!(r.status, 200, "{kind}: labels stay mutable: {}", r.text());
        assert_eq!(c.request("DELETE", &item, "", "").await.status, 200);
    }
    let _: Value = Value::Null;
}
