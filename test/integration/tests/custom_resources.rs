//! CustomResourceDefinitions through the real kubectl: the resource appears in discovery
//! and is served in every served version, with schema pruning, defaulting and validation,
//! printer columns, status and scale subresources, and deleting the CRD deletes its
//! objects.

use integration_tests::apiserver::TestApiServer;
use integration_tests::etcd::Etcd;
use integration_tests::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.color != 'blue' || self.size >= 5", message: "blue widgets must have size >= 5"}
            - {rule: "self.size >= oldSelf.size", message: "size may not shrink"}
            properties:
              size: {type: integer, minimum: 1, maximum: 10, description: How big the widget is.}
              color: {type: string, enum: [red, blue], default: red}
              replicas: {type: integer, default: 1}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

async fn scenario(s: &TestApiServer) {
    s.kubectl_ok(&["apply", "-f", "-"], Some(CRD));
    s.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    );
    let crd: Value = serde_json::from_str(
        &s.kubectl_ok(&["get", "crd", "widgets.example.com", "-o", "json"], None),
    )
    .unwrap();
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    let out = s.kubectl_ok(
        &["api-resources", "--api-group=example.com", "--no-headers"],
        None,
    );
    assert!(
        out.split_whitespace().collect::<Vec<_>>()
            == ["widgets", "wd", "example.com/v1", "true", "Widget"],
        "{out}"
    );

    // Create, apply again unchanged; defaults filled in.
    let w1 = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, extra: {free: [1, 2]}}\n";
    assert!(
        s.kubectl_ok(&["apply", "-f", "-"], Some(w1))
            .contains("widget.example.com/w1 created")
    );
    assert!(
        s.kubectl_ok(&["apply", "-f", "-"], Some(w1))
            .contains("widget.example.com/w1 unchanged")
    );
    let got: Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "wd", "w1", "-o", "json"], None)).unwrap();
    assert_eq!(
        got["spec"],
        json!({"size": 3, "color": "red", "replicas": 1, "extra": {"free": [1, 2]}})
    );
    assert_eq!(got["metadata"]["generation"], 1);

    // Unknown fields: refused by kubectl's strict validation, pruned otherwise.
    let bogus = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: 2, bogus: true}\n";
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some(bogus));
    assert!(
        !ok && err.contains(r#"unknown field "spec.bogus""#),
        "{err}"
    );
    s.kubectl_ok(&["apply", "--validate=false", "-f", "-"], Some(bogus));
    let w2 = s.kubectl_ok(&["get", "wd", "w2", "-o", "jsonpath={.spec}"], None);
    assert!(!w2.contains("bogus"), "{w2}");

    // Invalid objects get upstream's field errors.
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 30, color: pink}\n";
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some(bad));
    assert!(!ok);
    assert!(
        err.contains(r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.size: Invalid value: 30: spec.size in body should be less than or equal to 10"
        ),
        "{err}"
    );
    let (ok, _, err) = s.kubectl(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {color: red}\n",
        ),
    );
    assert!(!ok && err.contains("spec.size: Required value"), "{err}");

    // CEL rules (x-kubernetes-validations), including a transition rule.
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 2, color: blue}\n"));
    assert!(
        !ok && err.contains(r#"spec: Invalid value: "object": blue widgets must have size >= 5"#),
        "{err}"
    );
    let (ok, _, err) = s.kubectl(
        &[
            "patch",
            "wd",
            "w1",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":2}}"#,
        ],
        None,
    );
    assert!(!ok && err.contains("size may not shrink"), "{err}");
    let broken = CRD
        .replace("widgets.example.com", "gadgets.example.com")
        .replace(
            "plural: widgets, singular: widget, kind: Widget, shortNames: [wd]",
            "plural: gadgets, singular: gadget, kind: Gadget",
        )
        .replace("self.size >= oldSelf.size", "self.size >=");
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some(&broken));
    assert!(
        !ok && err.contains("x-kubernetes-validations[1].rule")
            && err.contains("compilation failed"),
        "{err}"
    );

    // Status subresource: the main resource ignores status, /status only takes status.
    let path = "/apis/example.com/v1/namespaces/default/widgets/w1";
    let mut cur = s.client.get(path).await.json();
    cur["status"] = json!({"replicas": 1, "selector": "app=w1", "conditions": [{"type": "Ready", "status": "True"}]});
    let r = s
        .client
        .send_json("PUT", &format!("{path}/status"), &cur)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = s.kubectl_ok(&["get", "widgets", "--no-headers"], None);
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("w1 "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["w1", "3", "red", "True"], "{out}");
    let mut cur = r.json();
    cur["status"]["replicas"] = json!(7);
    cur["spec"]["size"] = json!(4);
    let r = s.client.send_json("PUT", path, &cur).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"]["replicas"], 1);
    assert_eq!(r.json()["metadata"]["generation"], 2);

    // Strategic merge patch is for built-in types only.
    let r = s
        .client
        .request(
            "PATCH",
            path,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"size":5}}"#,
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());

    // Scale subresource.
    s.kubectl_ok(&["scale", "wd", "w1", "--replicas=5"], None);
    let scale = s.client.get(&format!("{path}/scale")).await.json();
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(
        scale["status"],
        json!({"replicas": 1, "selector": "app=w1"})
    );

    // The other served version reads the same objects.
    let beta = s
        .client
        .get("/apis/example.com/v1beta1/namespaces/default/widgets/w1")
        .await
        .json();
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["replicas"], 5);

    // A spec change (a new printer column) is served without losing the objects.
    let with_owner = CRD.replace(
        "    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}",
        "    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}\n    - {name: Replicas, type: integer, jsonPath: .spec.replicas}",
    );
    s.kubectl_ok(&["apply", "-f", "-"], Some(&with_owner));
    wait_for("the new column", Duration::from_secs(20), || async {
        let out = s.kubectl_ok(&["get", "widgets"], None);
        out.lines()
            .next()
            .unwrap_or_default()
            .contains("REPLICAS")
            .then_some(())
    })
    .await;
    let out = s.kubectl_ok(&["get", "widgets", "w1", "--no-headers"], None);
    assert!(out.split_whitespace().last() == Some("5"), "{out}");

    // explain reads the CRD's schema.
    let out = s.kubectl_ok(&["explain", "widgets.spec.size"], None);
    assert!(out.contains("How big the widget is."), "{out}");

    // Deleting the CRD deletes its objects, then the resource disappears.
    s.kubectl_ok(
        &["delete", "crd", "widgets.example.com", "--timeout=30s"],
        None,
    );
    wait_for(
        "custom resource to be unserved",
        Duration::from_secs(20),
        || async { (s.client.get("/apis/example.com/v1").await.status == 404).then_some(()) },
    )
    .await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(CRD));
    s.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    );
    let list = s.client.get("/apis/example.com/v1/widgets").await.json();
    assert_eq!(list["items"], json!([]), "objects survived their CRD");

    // A Webhook strategy needs its webhook (conversion itself: crd_conversion_webhook.rs).
    let webhook = CRD
        .replace("name: widgets.example.com", "name: gadgets.example.com")
        .replace(
            "{plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}",
            "{plural: gadgets, singular: gadget, kind: Gadget}",
        )
        + "  conversion:\n    strategy: Webhook\n";
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some(&webhook));
    assert!(!ok);
    assert!(
        err.contains(
            "spec.conversion.webhook: Required value: required when strategy is set to Webhook"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn custom_resources_on_embedded_store() {
    let s = TestApiServer::start(None, &[]).await;
    scenario(&s).await;
}

#[tokio::test]
async fn custom_resources_on_etcd() {
    let etcd = Etcd::start();
    let s = TestApiServer::start(Some(&etcd.endpoint), &[]).await;
    scenario(&s).await;
}
