//! The `Available` condition of a remote APIService (upstream `kube-aggregator/pkg/
//! controllers/status/remote`): its Service must exist, a ClusterIP Service must listen
//! on the APIService's port and have a ready endpoint on it, and its server must answer
//! `GET /apis/<group>/<version>` with a 2xx or 3xx to one of five attempts.

use serde_json::{Value, json};

/// A condition's status, reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Condition {
    pub fn local() -> Self {
        Condition {
            status: "True",
            reason: "Local",
            message: "Local APIServices are always available".into(),
        }
    }

    pub fn passed() -> Self {
        Condition {
            status: "True",
            reason: "Passed",
            message: "all checks passed".into(),
        }
    }

    pub fn failed_discovery(message: String) -> Self {
        Condition {
            status: "False",
            reason: "FailedDiscoveryCheck",
            message,
        }
    }

    fn unavailable(reason: &'static str, message: String) -> Self {
        Condition {
            status: "False",
            reason,
            message,
        }
    }

    /// The status with this condition set, its transition time kept while the status
    /// stays the same (upstream's `SetAPIServiceCondition`).
    pub fn apply(&self, status: &Value, now: &str) -> Value {
        let mut conditions: Vec<Value> =
            status["conditions"].as_array().cloned().unwrap_or_default();
        let old = conditions.iter().position(|c| c["type"] == "Available");
        let since = old
            .map(|i| &conditions[i])
            .filter(|c| c["status"] == self.status)
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(now));
        let c = json!({"type": "Available", "status": self.status, "lastTransitionTime": since,
            "reason": self.reason, "message": self.message});
        match old {
            Some(i) => conditions[i] = c,
            None => conditions.push(c),
        }
        json!({"conditions": conditions})
    }
}

/// The checks before the discovery probe: None when they pass. `svc` is None when the
/// Service does not exist; `slices` are its EndpointSlices.
pub fn check_service(
    namespace: &str,
    name: &str,
    port: i32,
    svc: Option<&Value>,
    slices: &[Value],
) -> Option<Condition> {
    let Some(svc) = svc else {
        return Some(Condition::unavailable(
            "ServiceNotFound",
            format!("service/{name} in {namespace:?} is not present"),
        ));
    };
    if svc["spec"]["type"].as_str().unwrap_or("ClusterIP") != "ClusterIP" {
        return None;
    }
    let Some(svc_port) = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port.into()))
    else {
        return Some(Condition::unavailable(
            "ServicePortError",
            format!("service/{name} in {namespace:?} is not listening on port {port}"),
        ));
    };
    if slices.is_empty() {
        return Some(Condition::unavailable(
            "EndpointsNotFound",
            format!("cannot find endpointslices for service/{name} in {namespace:?}"),
        ));
    }
    let port_name = svc_port["name"].as_str().unwrap_or_default();
    let active = slices.iter().any(|s| {
        let ready = s["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["conditions"]["ready"].as_bool().unwrap_or(true));
        let port =
            s["ports"].as_array().into_iter().flatten().any(|p| {
                p["name"].as_str().unwrap_or_default() == port_name && p["port"].is_number()
            });
        ready && port
    });
    (!active).then(|| {
        Condition::unavailable(
            "MissingEndpoints",
            format!("endpointslices for service/{name} in {namespace:?} have no addresses with port name {port_name:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_checks_give_upstream_reasons() {
        let svc = json!({"spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443}]}});
        let ready = json!({"ports": [{"name": "https", "port": 6443}], "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}]});
        let unready = json!({"ports": [{"name": "https", "port": 6443}], "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]});
        let cases = vec![
            ("ready", Some(svc.clone()), vec![ready.clone()], 443, None),
            ("no service", None, vec![], 443, Some("ServiceNotFound")),
            (
                "wrong port",
                Some(svc.clone()),
                vec![ready.clone()],
                8443,
                Some("ServicePortError"),
            ),
            (
                "no slices",
                Some(svc.clone()),
                vec![],
                443,
                Some("EndpointsNotFound"),
            ),
            (
                "not ready",
                Some(svc.clone()),
                vec![unready],
                443,
                Some("MissingEndpoints"),
            ),
            (
                "external name skips the endpoint checks",
                Some(json!({"spec": {"type": "ExternalName", "externalName": "x"}})),
                vec![],
                443,
                None,
            ),
        ];
        for (name, svc, slices, port, want) in cases {
            let got = check_service("wardle", "api", port, svc.as_ref(), &slices);
            assert_eq!(got.as_ref().map(|c| c.reason), want, "{name}: {got:?}");
        }
        let msg = check_service("wardle", "api", 443, None, &[])
            .unwrap()
            .message;
        assert_eq!(msg, "service/api in \"wardle\" is not present");
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let first = Condition::passed().apply(&json!({}), "t1");
        let same = Condition::passed().apply(&first, "t2");
        assert_eq!(same["conditions"][0]["lastTransitionTime"], "t1");
        let down = Condition::failed_discovery("x".into()).apply(&same, "t3");
        assert_eq!(down["conditions"][0]["lastTransitionTime"], "t3");
        assert_eq!(down["conditions"].as_array().unwrap().len(), 1);
    }
}
