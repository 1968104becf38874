//! Admission webhooks served by the test over HTTPS: a mutating one changes objects (and
//! sees who asks), a validating one refuses with its own message, unreachable webhooks
//! and fail closed or open per `failurePolicy`.

use base64::Engine;
use integration_tests::apiserver::TestApiServer;
use serde_json::{Value, json};

fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let mut response = json!({"uid": req["uid"], "allowed": true});
    match path {
        "/mutate" => {
            let patch = if req["object"]["metadata"]["labels"].is_object() {
                json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            };
            response["patchType"] = json!("JSONPatch");
            response["patch"] =
                json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
        }
        "/validate" => {
            if req["object"]["data"]["forbidden"].is_string() {
                response["allowed"] = json!(false);
                response["status"] =
                    json!({"code": 403, "message": "key \"forbidden\" is not allowed"});
            } else {
                response["warnings"] = json!(["checked by the validating webhook"]);
            }
        }
        _ => {}
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn configuration(kind: &str, name: &str, url: &str, ca: &str, extra: Value) -> String {
    let mut hook = json!({"name": name, "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "objectSelector": {"matchLabels": {"webhooks": "on"}},
        "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5});
    for (k, v) in extra.as_object().unwrap() {
        hook[k] = v.clone();
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "webhooks": [hook]})
    .to_string()
}

fn configmap(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{webhooks: \"on\"}}\ndata: {data}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_mutate_validate_and_fail_per_policy() {
    let s = TestApiServer::start(None, &[]).await;
    let hook = integration_tests::webhook::serve(&s.dir.path().join("webhook"), answer).await;
    let (port, ca, seen) = (hook.port, hook.ca_bundle.clone(), hook.seen.clone());
    let base = format!("https://127.0.0.1:{port}");
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&configuration(
            "MutatingWebhookConfiguration",
            "label.example.test",
            &format!("{base}/mutate"),
            &ca,
            json!({}),
        )),
    );
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "deny.example.test",
            &format!("{base}/validate"),
            &ca,
            json!({}),
        )),
    );

    // The mutating webhook's patch is stored; the validating one warns.
    let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(&configmap("good", "{a: b}")));
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: checked by the validating webhook"),
        "{err}"
    );
    let labels = s.kubectl_ok(
        &[
            "get",
            "cm",
            "good",
            "-o",
            "jsonpath={.metadata.labels.mutated}",
        ],
        None,
    );
    assert_eq!(labels, "yes");
    {
        let seen = seen.lock().unwrap();
        let review = &seen[0]["request"];
        assert_eq!(review["operation"], "CREATE");
        assert_eq!(
            review["kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(review["namespace"], "default");
        assert!(review["userInfo"]["username"].is_string(), "{review}");
        // The validating webhook sees the mutated object.
        assert_eq!(
            seen[1]["request"]["object"]["metadata"]["labels"]["mutated"],
            "yes"
        );
    }
    // Objects outside the objectSelector are not sent.
    let before = seen.lock().unwrap().len();
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n"),
    );
    assert_eq!(seen.lock().unwrap().len(), before);

    // The validating webhook refuses with its own message.
    let (ok, _, err) = s.kubectl(
        &["create", "-f", "-"],
        Some(&configmap("bad", "{forbidden: x}")),
    );
    assert!(!ok);
    assert!(
        err.contains(r#"admission webhook "deny.example.test" denied the request: key "forbidden" is not allowed"#),
        "{err}"
    );
    let (ok, _, _) = s.kubectl(&["get", "cm", "bad"], None);
    assert!(!ok, "a refused object must not be stored");

    // An unreachable webhook fails closed by default, open with failurePolicy Ignore.
    let closed = format!("https://127.0.0.1:{}/x", integration_tests::free_port());
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "down.example.test",
            &closed,
            &ca,
            json!({"objectSelector": {"matchLabels": {"down": "fail"}}}),
        )),
    );
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "down-ignored.example.test",
            &closed,
            &ca,
            json!({"failurePolicy": "Ignore", "objectSelector": {"matchLabels": {"down": "ignore"}}}),
        )),
    );
    let cm = |name: &str, label: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"down": label}}});
    let r = s
        .client
        .send_json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &cm("f", "fail"),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["reason"], "InternalError");
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with(r#"Internal error occurred: failed calling webhook "down.example.test": failed to call webhook: Post ""#),
        "{msg}"
    );
    let r = s
        .client
        .send_json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &cm("i", "ignore"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // matchConditions: a false condition skips the webhook (this one is down and would
    // fail the request closed); a condition that cannot be evaluated fails closed too.
    s.kubectl_ok(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "conditional.example.test",
            &closed,
            &ca,
            json!({"objectSelector": {"matchLabels": {"down": "conditional"}},
                "matchConditions": [
                    {"name": "not-skipped", "expression": "object.metadata.name != 'skipped'"},
                    {"name": "no-error", "expression": "object.metadata.name != 'broken' || object.data.missing == 'x'"}]}),
        )),
    );
    let post = |name: &'static str| {
        let body = cm(name, "conditional");
        let client = s.client.clone();
        async move {
            client
                .send_json("POST", "/api/v1/namespaces/default/configmaps", &body)
                .await
        }
    };
    let r = post("skipped").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post("called").await;
    assert_eq!(r.status, 500, "the webhook was called: {}", r.text());
    let r = post("broken").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains(r#"failed calling webhook "conditional.example.test": failed evaluating match conditions"#),
        "{msg}"
    );
    // Expressions are compiled when the configuration is written.
    let (ok, _, err) = s.kubectl(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "bad-condition.example.test",
            &closed,
            &ca,
            json!({"matchConditions": [{"name": "bad", "expression": "object.metadata.name =="}]}),
        )),
    );
    assert!(
        !ok && err.contains("webhooks[0].matchConditions[0].expression: Invalid value"),
        "{err}"
    );
}
