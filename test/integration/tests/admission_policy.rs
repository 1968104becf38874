//! ValidatingAdmissionPolicy with the real kubectl: CEL validations with upstream's
//! denial message and reason, variables, matchConditions, messageExpression, parameters
//! from a ConfigMap (and the Deny parameterNotFoundAction), namespace-selected bindings,
//! Warn bindings, and failurePolicy on evaluation errors.

use integration_tests::apiserver::TestApiServer;
use serde_json::json;

const POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replica-limit}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  matchConditions:
  - {name: not-skipped, expression: "!object.metadata.name.startsWith('skip-')"}
  variables:
  - {name: replicas, expression: "object.spec.replicas"}
  validations:
  - expression: "variables.replicas <= 5"
  - expression: "object.metadata.name.size() < 10"
    messageExpression: "'name ' + object.metadata.name + ' is too long'"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: replica-limit-binding}
spec:
  policyName: replica-limit
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {limits: fixed}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: param-limit}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
  - expression: "object.spec.replicas <= int(params.data.max)"
    message: "too many replicas for this team"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: param-limit-binding}
spec:
  policyName: param-limit
  validationActions: [Deny]
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector: {matchLabels: {limits: param}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-passwords}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
  - expression: "!has(object.data) || !('password' in object.data)"
    message: "no passwords in configmaps"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-passwords-warn}
spec:
  policyName: no-passwords
  validationActions: [Warn]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: broken}
spec:
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [secrets]}
  validations:
  - expression: "object.spec.nothing.deeper == 1"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: broken-binding}
spec:
  policyName: broken
  validationActions: [Deny]
"#;

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n    metadata: {{labels: {{a: b}}}}\n    spec: {{containers: [{{name: c, image: busybox}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validating_admission_policies() {
    let s = TestApiServer::start(None, &[]).await;
    // (`kubectl create namespace|configmap|secret` send protobuf, which this server does
    // not read yet; manifests go as JSON.)
    let ns = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{limits: {name}}}}}\n"
        )
    };
    s.kubectl_ok(&["create", "-f", "-"], Some(&ns("fixed")));
    s.kubectl_ok(&["create", "-f", "-"], Some(&ns("param")));
    s.kubectl_ok(&["create", "-f", "-"], Some(POLICIES));
    let create = |ns: &str, body: &str| s.kubectl(&["create", "-n", ns, "-f", "-"], Some(body));

    // A failed expression without a message names the expression; reason Invalid -> 422
    // (kubectl shows it as upstream's does: an invalid object with one field-less cause).
    let (ok, _, err) = create("fixed", &deployment("big", 10));
    assert!(!ok);
    assert!(
        err.contains(r#"The deployments "big" is invalid: : ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-binding' denied request: failed expression: variables.replicas <= 5"#),
        "{err}"
    );
    let r = s
        .client
        .request(
            "POST",
            "/apis/apps/v1/namespaces/fixed/deployments",
            "application/yaml",
            deployment("big", 10),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["reason"], "Invalid");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"deployments.apps "big" is forbidden: ValidatingAdmissionPolicy"#)
    );
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-binding' denied request: failed expression: variables.replicas <= 5"
    );
    // messageExpression and a Forbidden reason.
    let r = s
        .client
        .request(
            "POST",
            "/apis/apps/v1/namespaces/fixed/deployments",
            "application/yaml",
            deployment("much-too-long-name", 1),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: name much-too-long-name is too long")
    );
    // Within limits; matchConditions exempt skip-*; other namespaces are not bound.
    assert!(create("fixed", &deployment("small", 3)).0);
    assert!(create("fixed", &deployment("small2", 3)).0);
    assert!(create("fixed", &deployment("skip-big", 10)).0);
    assert!(create("default", &deployment("big", 10)).0);
    // Updates are checked too (through the main resource; `deployments/scale` is another
    // resource the rule does not name, as upstream).
    let (ok, _, err) = s.kubectl(
        &[
            "patch",
            "-n",
            "fixed",
            "deployment/small",
            "-p",
            r#"{"spec":{"replicas":9}}"#,
        ],
        None,
    );
    assert!(
        !ok && err.contains("failed expression: variables.replicas <= 5"),
        "{err}"
    );

    // Parameters: missing -> denied per parameterNotFoundAction; then read from the ConfigMap.
    let (ok, _, err) = create("param", &deployment("p1", 2));
    assert!(!ok);
    assert!(
        err.contains("no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{err}"
    );
    let limits = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits"}, "data": {"max": "3"}});
    assert!(create("default", &limits.to_string()).0);
    let (ok, _, err) = create("param", &deployment("p1", 4));
    assert!(
        !ok && err.contains("denied request: too many replicas for this team"),
        "{err}"
    );
    assert!(create("param", &deployment("p2", 2)).0);

    // Warn: admitted, with upstream's warning.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "creds"}, "data": {"password": "x"}}).to_string();
    let (ok, _, err) = create("default", &cm);
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'no-passwords' with binding 'no-passwords-warn': no passwords in configmaps"),
        "{err}"
    );

    // An expression that errors is ignored under failurePolicy Ignore ...
    let secret = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"a": "Yg=="}}).to_string()
    };
    let (ok, _, err) = create("default", &secret("s1"));
    assert!(ok, "{err}");
    // ... and denies under Fail.
    s.kubectl_ok(
        &[
            "patch",
            "validatingadmissionpolicy",
            "broken",
            "--type=merge",
            "-p",
            r#"{"spec":{"failurePolicy":"Fail"}}"#,
        ],
        None,
    );
    let (ok, _, err) = create("default", &secret("s2"));
    assert!(!ok);
    assert!(err.contains("ValidatingAdmissionPolicy 'broken' with binding 'broken-binding' denied request: expression 'object.spec.nothing.deeper == 1' resulted in error"), "{err}");
}
