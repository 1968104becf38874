//! Auditing (upstream `apiserver/pkg/audit` and `endpoints/filters/audit.go`): every
//! request the policy selects is written as `audit.k8s.io/v1` Events, one per stage
//! (RequestReceived, ResponseStarted for long-running requests, ResponseComplete,
//! Panic), with the request and response bodies at the levels that ask for them.

pub mod log;
pub mod policy;

use crate::authentication::UserInfo;
use crate::endpoints::request::RequestInfo;
use bytes::Bytes;
use policy::{Level, Policy};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Where the request body is kept for the audit event (a request extension the body
/// readers fill in).
#[derive(Clone, Default)]
pub struct RequestBody(pub Arc<Mutex<Option<Bytes>>>);

pub struct Auditor {
    pub policy: Policy,
    pub backend: log::LogBackend,
}

/// One audited request in flight.
pub struct Record {
    pub id: String,
    pub level: Level,
    omit_stages: Vec<String>,
    base: Mutex<Value>,
    pub body: RequestBody,
    /// What admission adds to the event (upstream's `AddAuditAnnotation`).
    pub annotations: Annotations,
}

/// A request's audit annotations, shared by the record and the admission plugins.
#[derive(Clone, Default)]
pub struct Annotations(pub Arc<Mutex<std::collections::BTreeMap<String, String>>>);

impl Annotations {
    /// Adds one; a key already set keeps its first value, as upstream's.
    pub fn add(&self, key: &str, value: &str) {
        self.0
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_insert_with(|| value.to_string());
    }

    pub fn snapshot(&self) -> std::collections::BTreeMap<String, String> {
        self.0.lock().unwrap().clone()
    }
}

impl std::fmt::Debug for Annotations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl PartialEq for Annotations {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Annotations {}

impl Record {
    /// Records whom the request acts as (impersonation).
    pub fn impersonated(&self, user: &UserInfo) {
        let mut u = json!({"username": user.name, "groups": user.groups});
        if !user.uid.is_empty() {
            u["uid"] = json!(user.uid);
        }
        self.base.lock().unwrap()["impersonatedUser"] = u;
    }
}

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn object_ref(info: &RequestInfo) -> Value {
    let mut r = json!({"resource": info.resource, "apiVersion": info.api_version});
    for (k, v) in [
        ("namespace", &info.namespace),
        ("name", &info.name),
        ("apiGroup", &info.api_group),
        ("subresource", &info.subresource),
    ] {
        if !v.is_empty() {
            r[k] = json!(v);
        }
    }
    r
}

fn without_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if let Some(items) = v["items"].as_array_mut() {
        for i in items {
            if let Some(m) = i["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
    v
}

impl Auditor {
    /// Starts the record of a request, or None when the policy leaves it out.
    pub fn begin(
        &self,
        info: &RequestInfo,
        user: &UserInfo,
        uri: &str,
        source_ip: &str,
        user_agent: &str,
    ) -> Option<Record> {
        let d = self.policy.decide(user, info);
        if d.level == Level::None {
            return None;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut base = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": d.level.as_str(),
            "auditID": id,
            "requestURI": uri,
            "verb": info.verb,
            "user": {"username": user.name, "groups": user.groups},
            "sourceIPs": [source_ip],
            "userAgent": user_agent,
            "requestReceivedTimestamp": micro_now(),
        });
        if !user.uid.is_empty() {
            base["user"]["uid"] = json!(user.uid);
        }
        if !user.extra.is_empty() {
            base["user"]["extra"] = json!(user.extra);
        }
        if info.is_resource_request {
            base["objectRef"] = object_ref(info);
        }
        let record = Record {
            id,
            level: d.level,
            omit_stages: d.omit_stages,
            base: Mutex::new(base),
            body: RequestBody::default(),
            annotations: Annotations::default(),
        };
        self.emit(&record, "RequestReceived", None, None);
        Some(record)
    }

    /// Writes one stage's event. `status` is (code, Status body for failures);
    /// `response` the response object at RequestResponse level.
    pub fn emit(
        &self,
        r: &Record,
        stage: &str,
        status: Option<(u16, Option<&Value>)>,
        response: Option<Value>,
    ) {
        if r.omit_stages.iter().any(|s| s == stage) {
            return;
        }
        let mut ev = r.base.lock().unwrap().clone();
        ev["stage"] = json!(stage);
        ev["stageTimestamp"] = json!(micro_now());
        if let Some((code, failure)) = status {
            let mut st = json!({"metadata": {}, "code": code});
            if let Some(f) = failure {
                for k in ["status", "message", "reason"] {
                    if !f[k].is_null() {
                        st[k] = f[k].clone();
                    }
                }
            }
            ev["responseStatus"] = st;
            let decision = if code == 403 { "forbid" } else { "allow" };
            ev["annotations"] = json!({"authorization.k8s.io/decision": decision});
        }
        for (k, v) in r.annotations.snapshot() {
            ev["annotations"][k] = json!(v);
        }
        if r.level >= Level::Request
            && let Some(body) = r.body.0.lock().unwrap().as_ref()
            && let Ok(obj) = serde_json::from_slice::<Value>(body)
        {
            ev["requestObject"] = if self.policy.omit_managed_fields {
                without_managed_fields(obj)
            } else {
                obj
            };
        }
        if r.level >= Level::RequestResponse
            && let Some(obj) = response
        {
            ev["responseObject"] = if self.policy.omit_managed_fields {
                without_managed_fields(obj)
            } else {
                obj
            };
        }
        self.backend
            .write(&serde_json::to_vec(&ev).unwrap_or_default());
    }
}
